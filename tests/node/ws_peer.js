// The Node.js peer of tests/test_websocket.c: one scenario per run
// against a Zinx server's WebSocket port (or, for "server", a WebSocket
// echo server for the C client). Exits 0 when the scenario saw what it
// expects, else prints why and exits 1.
//
//   node ws_peer.js SCENARIO PORT PATH
//
// Zinx frames are TLV (PacketFormat "tlv"): id u32 BE, len u32 BE, data;
// the server echoes ID 1.
'use strict';
const net = require('net');
const crypto = require('crypto');
const WebSocket = require('ws');

const [scenario, portText, wsPath = '/ws'] = process.argv.slice(2);
const port = Number(portText);
const url = `ws://127.0.0.1:${port}${wsPath}`;

function fail(why) {
  console.error(`ws_peer ${scenario}: ${why}`);
  process.exit(1);
}
setTimeout(() => fail('timed out'), 20000).unref();

function frame(id, data) {
  const b = Buffer.alloc(8 + data.length);
  b.writeUInt32BE(id, 0);
  b.writeUInt32BE(data.length, 4);
  Buffer.from(data).copy(b, 8);
  return b;
}

// Collects the echoed frames of a client whatever the message bounds.
function frameReader(ws) {
  let buf = Buffer.alloc(0);
  const waiters = [];
  const frames = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) fail('the server sent a text message');
    buf = Buffer.concat([buf, data]);
    while (buf.length >= 8) {
      const len = buf.readUInt32BE(4);
      if (buf.length < 8 + len) break;
      frames.push({ id: buf.readUInt32BE(0), data: buf.subarray(8, 8 + len).toString() });
      buf = buf.subarray(8 + len);
    }
    while (waiters.length && frames.length) waiters.shift()(frames.shift());
  });
  return () => new Promise((resolve) => {
    if (frames.length) resolve(frames.shift());
    else waiters.push(resolve);
  });
}

function open(opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

async function expectEcho(next, want) {
  const f = await next();
  if (f.id !== 1 || f.data !== want) fail(`echo ${JSON.stringify(f)} instead of ${want}`);
}

// Several Zinx frames in one message, one frame across two messages, a
// fragmented message; then a normal close answered with 1000.
async function frames() {
  const ws = await open();
  const next = frameReader(ws);
  ws.send(Buffer.concat([frame(1, 'a'), frame(1, 'bb'), frame(1, 'ccc')]));
  for (const w of ['a', 'bb', 'ccc']) await expectEcho(next, w);
  const f = frame(1, 'split-across-messages');
  ws.send(f.subarray(0, 5));
  ws.send(f.subarray(5));
  await expectEcho(next, 'split-across-messages');
  const g = frame(1, 'fragmented');
  ws.send(g.subarray(0, 3), { fin: false });
  ws.send(g.subarray(3, 12), { fin: false });
  ws.send(g.subarray(12), { fin: true });
  await expectEcho(next, 'fragmented');
  const done = closed(ws);
  ws.close(1000);
  const code = await done;
  if (code !== 1000) fail(`close code ${code}, not 1000`);
}

// Pings keep a connection alive past IdleTimeoutMs (the C side sets
// 600 ms); once they stop, the idle timeout closes it with 1001.
async function ping() {
  const ws = await open();
  const next = frameReader(ws);
  let pongs = 0;
  ws.on('pong', () => pongs++);
  const end = closed(ws);
  let open_ = true;
  end.then(() => { open_ = false; });
  const timer = setInterval(() => ws.ping(), 150);
  await new Promise((r) => setTimeout(r, 2000));
  clearInterval(timer);
  if (!open_) fail('closed while pings flowed');
  if (pongs < 5) fail(`only ${pongs} pongs`);
  ws.send(frame(1, 'still-here'));
  await expectEcho(next, 'still-here');
  const code = await end;
  if (code !== 1001) fail(`idle close code ${code}, not 1001`);
}

async function expectClose(send, want) {
  const ws = await open();
  const end = closed(ws);
  send(ws);
  const code = await end;
  if (code !== want) fail(`close code ${code}, not ${want}`);
}

// A raw socket: the upgrade by hand, then whatever bytes the case needs.
function rawUpgrade() {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    s.once('error', reject);
    s.on('connect', () => s.write(`GET ${wsPath} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      const head = buf.subarray(0, end).toString();
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(head));
      const accept = crypto.createHash('sha1')
        .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (!head.includes(`Sec-WebSocket-Accept: ${accept}`)) reject(new Error('bad accept'));
      resolve({ s, rest: buf.subarray(end + 4) });
    };
    s.on('data', onData);
  });
}

// Reads the server's close frame from a raw socket: its status.
function rawCloseStatus(s, rest) {
  return new Promise((resolve) => {
    let buf = rest;
    const look = () => {
      if (buf.length >= 4 && (buf[0] & 0x0f) === 0x8) resolve(buf.readUInt16BE(2));
    };
    s.on('data', (d) => { buf = Buffer.concat([buf, d]); look(); });
    s.on('close', () => resolve(-1));
    look();
  });
}

async function unmasked() {
  const { s, rest } = await rawUpgrade();
  const f = frame(1, 'x');
  s.write(Buffer.concat([Buffer.from([0x82, f.length]), f])); // no mask bit
  const st = await rawCloseStatus(s, rest);
  if (st !== 1002) fail(`close status ${st}, not 1002`);
  s.destroy();
}

async function rsv() {
  const { s, rest } = await rawUpgrade();
  s.write(Buffer.from([0xc2, 0x80, 1, 2, 3, 4])); // RSV1, masked, empty
  const st = await rawCloseStatus(s, rest);
  if (st !== 1002) fail(`close status ${st}, not 1002`);
  s.destroy();
}

// An HTTP request by hand: the status line of the answer.
function rawRequest(text, dribbleMs) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => { got += d.toString(); });
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    s.on('connect', async () => {
      if (!dribbleMs) return s.write(text);
      for (const ch of text) {
        if (s.destroyed) return;
        s.write(ch);
        await new Promise((r) => setTimeout(r, dribbleMs));
      }
    });
  });
}

function request(path, extra = '', version = '13') {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: ${version}\r\n${extra}\r\n`;
}

async function expectStatus(text, status, header) {
  const got = await rawRequest(text);
  if (!got.startsWith(`HTTP/1.1 ${status} `)) fail(`got ${JSON.stringify(got)} instead of ${status}`);
  if (header && !got.includes(header)) fail(`no ${header} in ${JSON.stringify(got)}`);
}

async function refuse() {
  await expectStatus(request('/elsewhere'), 404);
  await expectStatus(request(wsPath, '', '8'), 426, 'Sec-WebSocket-Version: 13');
  await expectStatus(request(wsPath, 'Origin: http://evil.example\r\n'), 403);
  await expectStatus(request(wsPath, 'Origin: http://good.example\r\nAuthorization: none\r\n'), 401);
  await expectStatus(request(wsPath, 'X-Big: ' + 'a'.repeat(9000) + '\r\n'), 431);
  await expectStatus(`POST ${wsPath} HTTP/1.1\r\nHost: x\r\n\r\n`, 405);
  // A good Origin passes the check and upgrades.
  const ws = await open({ origin: 'http://good.example' });
  ws.terminate();
}

// A request dribbled one byte per 100 ms is cut by HandshakeTimeoutMs
// (the C side sets 500 ms): the server closes well before it ends.
async function slowloris() {
  const t0 = Date.now();
  const got = await rawRequest(request(wsPath, 'X-Pad: ' + 'p'.repeat(100) + '\r\n'), 100);
  const ms = Date.now() - t0;
  if (got.startsWith('HTTP/1.1 101')) fail('the slow request was accepted');
  if (ms > 5000) fail(`closed only after ${ms} ms`);
}

// A WebSocket echo server for the C client: prints its port, echoes
// binary messages, checks they came masked (ws refuses unmasked ones by
// itself) and exits after its first client leaves.
function server() {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, path: wsPath });
  wss.on('listening', () => console.log(`PORT ${wss.address().port}`));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) fail('the C client sent text');
      ws.send(data);
    });
    ws.on('close', (code) => {
      console.log(`CLOSED ${code}`);
      process.exit(0);
    });
  });
  setTimeout(() => fail('no client came'), 15000).unref();
}

const scenarios = {
  frames,
  ping,
  oversize: () => expectClose((ws) => ws.send(Buffer.alloc(2048)), 1009),
  text: () => expectClose((ws) => ws.send('text is refused'), 1003),
  unmasked,
  rsv,
  refuse,
  slowloris,
  server,
};
if (!scenarios[scenario]) fail('unknown scenario');
Promise.resolve(scenarios[scenario]()).then(() => {
  if (scenario !== 'server') process.exit(0);
}, (e) => fail(e.stack || String(e)));
