// A real browser against a Zinx server: serves a page on 127.0.0.1 that
// opens a WebSocket to the server, sends Zinx TLV frames built in
// JavaScript (two frames in one message, one frame split across two
// messages), checks the echoes and POSTs its verdict back here; runs
// headless Chromium on it and exits 0 when the page said PASS.
//
//   node browser.js WS_URL
//
// WS_URL is ws://127.0.0.1:PORT/PATH (a wss:// URL works the same once
// the server has TLS: pass the test CA's SPKI hash in
// ZINX_TEST_CHROMIUM_FLAGS, e.g. --ignore-certificate-errors-spki-list=...).
'use strict';
const http = require('http');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const wsUrl = process.argv[2];
const chromium = process.env.ZINX_TEST_CHROMIUM || '/usr/bin/chromium';
let browser = null;

// Chromium leads a process group of its own (spawned detached): killing
// the group stops its helper processes too, which would otherwise go on
// writing the profile while it is being removed, and leave it behind.
function killBrowser() {
  try {
    process.kill(-browser.pid, 'SIGKILL');
  } catch (e) {
    browser.kill('SIGKILL');
  }
}

function finish(code, text) {
  (code === 0 ? console.log : console.error)(`browser: ${text}`);
  if (browser) killBrowser();
  process.exit(code);
}
setTimeout(() => finish(1, 'no verdict from the page in 60 s'), 60000).unref();

// The page: TLV is id u32 BE, len u32 BE, data (PacketFormat "tlv"); the
// server echoes ID 1.
const page = `<!doctype html><meta charset="utf-8"><title>zinx ws</title><script>
const url = ${JSON.stringify(wsUrl)};
function tlv(id, text) {
  const data = new TextEncoder().encode(text);
  const b = new Uint8Array(8 + data.length), v = new DataView(b.buffer);
  v.setUint32(0, id); v.setUint32(4, data.length); b.set(data, 8);
  return b;
}
function report(verdict) {
  fetch('/result', { method: 'POST', body: verdict });
}
const want = ['one', 'two', 'split-in-two-messages', 'x'.repeat(3000)];
let got = [], buf = new Uint8Array(0);
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
ws.onerror = () => report('FAIL websocket error');
ws.onclose = (e) => { if (got.length < want.length) report('FAIL closed ' + e.code); };
ws.onopen = () => {
  const a = tlv(1, want[0]), b = tlv(1, want[1]);
  const both = new Uint8Array(a.length + b.length); both.set(a); both.set(b, a.length);
  ws.send(both);
  const c = tlv(1, want[2]);
  ws.send(c.slice(0, 6)); ws.send(c.slice(6));
  ws.send(tlv(1, want[3]));
};
ws.onmessage = (e) => {
  if (!(e.data instanceof ArrayBuffer)) return report('FAIL a text message');
  const m = new Uint8Array(e.data), n = new Uint8Array(buf.length + m.length);
  n.set(buf); n.set(m, buf.length); buf = n;
  while (buf.length >= 8) {
    const v = new DataView(buf.buffer, buf.byteOffset);
    const id = v.getUint32(0), len = v.getUint32(4);
    if (buf.length < 8 + len) break;
    got.push(id + ':' + new TextDecoder().decode(buf.slice(8, 8 + len)));
    buf = buf.slice(8 + len);
  }
  if (got.length === want.length) {
    const ok = got.every((g, i) => g === '1:' + want[i]);
    report(ok ? 'PASS' : 'FAIL echoes ' + JSON.stringify(got).slice(0, 200));
    ws.close(1000);
  }
};
</script>`;

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/result') {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      res.end('ok');
      finish(body === 'PASS' ? 0 : 1, body);
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(page);
});

server.listen(0, '127.0.0.1', () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'zinx-chromium-'));
  const extra = (process.env.ZINX_TEST_CHROMIUM_FLAGS || '').split(' ').filter(Boolean);
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu',
    '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    `--user-data-dir=${profile}`, ...extra,
    `http://127.0.0.1:${server.address().port}/`];
  browser = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let log = '';
  browser.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  browser.on('error', (e) => finish(1, `cannot run ${chromium}: ${e.message}`));
  // Chromium's helper processes may still write the profile for a moment
  // after the browser is killed: removing it is best effort.
  const removeProfile = () => {
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
    } catch (e) { /* left in the temporary directory */ }
  };
  browser.on('exit', (code) => {
    browser = null;
    removeProfile();
    finish(1, `chromium exited (${code}) before a verdict:\n${log}`);
  });
  process.on('exit', removeProfile);
});
