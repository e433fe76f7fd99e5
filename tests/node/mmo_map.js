// The MMO demo's live map in headless Chromium, driven over the DevTools
// protocol (with npm's ws, already the WebSocket tests' peer): opens the
// page zinx-mmo serves, waits until it shows the wanted number of
// players, then looks at its canvas twice, MOVE_GAP_MS apart, and counts
// the pixels that changed. The canvas draws only the grid and the dots
// (examples/mmo/web/map.html), so changed pixels mean dots moved.
//
//   node mmo_map.js PAGE_URL PLAYERS OUT.png
//
// Prints one line "map: players=N changed_pixels=N ..." and exits 0 when
// the page showed PLAYERS players, live, and at least MIN_CHANGED pixels
// changed; writes the second screenshot to OUT.png either way (once the
// page loaded). Exit 1 otherwise, with the reason.
'use strict';
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const WebSocket = require('ws');

const [pageUrl, wantText, outPng] = process.argv.slice(2);
const want = Number(wantText);
const chromium = process.env.ZINX_TEST_CHROMIUM || '/usr/bin/chromium';
const WAIT_PLAYERS_MS = 30000;
const MOVE_GAP_MS = 800;
// A dot is about 28 pixels; half a dot's worth is no noise.
const MIN_CHANGED = 15;

let browser = null;
let profile = null;

function removeProfile() {
  if (profile === null) return;
  try {
    fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  } catch (e) { /* left in the temporary directory */ }
}

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
  (code === 0 ? console.log : console.error)(`map: ${text}`);
  if (browser) killBrowser();
  removeProfile();
  process.exit(code);
}
setTimeout(() => finish(1, 'no verdict in 55 s'), 55000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Chromium writes its DevTools port and browser path to the profile.
async function devtoolsPort() {
  const file = path.join(profile, 'DevToolsActivePort');
  for (let i = 0; i < 300; i++) {
    try {
      const port = Number(fs.readFileSync(file, 'utf8').split('\n')[0]);
      if (port > 0) return port;
    } catch (e) { /* not yet */ }
    await sleep(50);
  }
  throw new Error('chromium did not open its DevTools port');
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
      });
    }).on('error', reject);
  });
}

// One page's DevTools session: send(method, params) -> result.
function session(wsUrl) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    const calls = new Map();
    let next = 1;
    ws.on('message', (data) => {
      const m = JSON.parse(data);
      const call = calls.get(m.id);
      if (!call) return; // an event
      calls.delete(m.id);
      if (m.error) call.reject(new Error(`${call.method}: ${m.error.message}`));
      else call.resolve(m.result);
    });
    ws.on('error', reject);
    ws.on('open', () => resolve((method, params = {}) =>
      new Promise((res, rej) => {
        const id = next++;
        calls.set(id, { resolve: res, reject: rej, method });
        ws.send(JSON.stringify({ id, method, params }));
      })));
  });
}

async function evaluate(send, expression) {
  const r = await send('Runtime.evaluate', { expression, returnByValue: true });
  if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.text}`);
  return r.result.value;
}

// What the page shows now.
const READ = `({status: document.getElementById('status').textContent,
  players: Number(document.getElementById('players').textContent)})`;
// Keeps the canvas's pixels (A), or counts those that differ from A (B).
const KEEP = `(() => { const c = document.getElementById('map');
  window.__mapA = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return window.__mapA.length; })()`;
const CHANGED = `(() => { const c = document.getElementById('map');
  const b = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const a = window.__mapA; let n = 0;
  for (let i = 0; i < b.length; i += 4)
    if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2] ||
        a[i + 3] !== b[i + 3]) n++;
  return n; })()`;

async function screenshot(send, file) {
  const shot = await send('Page.captureScreenshot', { format: 'png' });
  fs.writeFileSync(file, Buffer.from(shot.data, 'base64'));
}

async function main() {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'zinx-chromium-'));
  const extra = (process.env.ZINX_TEST_CHROMIUM_FLAGS || '').split(' ').filter(Boolean);
  browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu',
    '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    '--hide-scrollbars', '--remote-debugging-port=0',
    `--user-data-dir=${profile}`, ...extra, 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let log = '';
  browser.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  browser.on('error', (e) => finish(1, `cannot run ${chromium}: ${e.message}`));
  browser.on('exit', (code) => {
    browser = null;
    finish(1, `chromium exited (${code}) before a verdict:\n${log}`);
  });
  const port = await devtoolsPort();
  const targets = await getJson(`http://127.0.0.1:${port}/json/list`);
  const page = targets.find((t) => t.type === 'page');
  if (!page) throw new Error('no page target');
  const send = await session(page.webSocketDebuggerUrl);
  await send('Page.enable');
  // A fixed viewport, so that the screenshot holds the whole page.
  await send('Emulation.setDeviceMetricsOverride',
    { width: 1040, height: 700, deviceScaleFactor: 1, mobile: false });
  await send('Page.navigate', { url: pageUrl });

  let seen = { status: '', players: 0 };
  const until = Date.now() + WAIT_PLAYERS_MS;
  while (Date.now() < until) {
    try { seen = await evaluate(send, READ); } catch (e) { /* loading */ }
    if (seen.status === 'live' && seen.players === want) break;
    await sleep(200);
  }
  if (seen.status !== 'live' || seen.players !== want)
    return finish(1, `the page shows status "${seen.status}", ` +
                     `players ${seen.players}, want live and ${want}`);
  await evaluate(send, KEEP);
  await sleep(MOVE_GAP_MS);
  const changed = await evaluate(send, CHANGED);
  const after = await evaluate(send, READ);
  if (outPng) await screenshot(send, outPng);
  const text = `players=${after.players} changed_pixels=${changed} ` +
               `in ${MOVE_GAP_MS} ms`;
  if (after.players !== want) return finish(1, `${text}: players changed`);
  if (changed < MIN_CHANGED) return finish(1, `${text}: the dots did not move`);
  finish(0, text);
}

main().catch((e) => finish(1, e.message));
