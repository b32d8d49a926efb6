// Conformance client for codec/websocket's tests, on node's `ws` package (npm). It drives an
// echo server through the Autobahn sections a well-behaved client can exercise, checks every
// answer itself, prints "ok <case>" per case and exits 0; any mismatch prints "FAIL ..." and
// exits 1. Usage: node ws_client.js ws://127.0.0.1:PORT/ <server max message bytes>
'use strict';
const WebSocket = require('ws');
const url = process.argv[2];
const maxMessage = parseInt(process.argv[3], 10);

function fail(msg) { console.log('FAIL ' + msg); process.exit(1); }
setTimeout(() => fail('timed out'), 60000).unref();

// open connects with the given per-message-deflate setting and returns the socket once open.
function open(deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 64 << 20 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// next resolves with the next message (data, isBinary).
function next(ws) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data, isBinary) => resolve({ data, isBinary }));
    ws.once('close', (code) => reject(new Error('closed with ' + code)));
  });
}

async function echo(ws, name, payload, binary) {
  const got = next(ws);
  ws.send(payload, { binary });
  const m = await got;
  const want = Buffer.from(payload);
  if (m.isBinary !== binary || !Buffer.from(m.data).equals(want)) {
    fail(`${name}: echo of ${want.length} bytes came back as ${Buffer.from(m.data).length} bytes (binary ${m.isBinary})`);
  }
  console.log('ok ' + name);
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

async function section(deflate) {
  const tag = deflate ? 'deflate' : 'plain';
  const ws = await open(deflate);
  if (deflate && !ws.extensions.includes('permessage-deflate')) fail('permessage-deflate not negotiated: ' + ws.extensions);
  // 1 framing: every length class, text and binary.
  for (const n of [0, 125, 126, 127, 128, 65535, 65536]) {
    await echo(ws, `${tag} 1 text ${n}`, 'x'.repeat(n), false);
    await echo(ws, `${tag} 1 binary ${n}`, Buffer.alloc(n, 0xfe), true);
  }
  // 2 ping/pong: the server answers with the same payload.
  await new Promise((resolve) => {
    ws.once('pong', (data) => {
      if (data.toString() !== 'ping payload') fail('pong payload ' + data);
      resolve();
    });
    ws.ping('ping payload');
  });
  console.log(`ok ${tag} 2 ping`);
  // 5 fragmentation: one text message in fragments, the middle one splitting a code point.
  const text = Buffer.from('fragments: κόσμε 😀 end');
  const got = next(ws);
  ws.send(text.subarray(0, 13), { binary: false, fin: false });
  ws.send(text.subarray(13, 20), { binary: false, fin: false });
  ws.send(text.subarray(20), { binary: false, fin: true });
  const m = await got;
  if (m.isBinary || !Buffer.from(m.data).equals(text)) fail('fragmented text echoed as ' + m.data);
  console.log(`ok ${tag} 5 fragmented`);
  // 6 UTF-8: multi-byte code points of every length.
  await echo(ws, `${tag} 6 utf8`, 'Hello-µ@ßöäüàá-UTF-8!! κόσμε \u{10FFFF} 😀', false);
  // 9 limits and performance: large messages, and many small ones in flight at once.
  await echo(ws, `${tag} 9 text 1 MiB`, 'BAsd7&jh23'.repeat(104857), false);
  let count = 0;
  await new Promise((resolve) => {
    ws.on('message', function onm(data) {
      if (data.toString() !== 'm' + count) fail(`message ${count} came back as ${data}`);
      if (++count === 1000) { ws.off('message', onm); resolve(); }
    });
    for (let i = 0; i < 1000; i++) ws.send('m' + i);
  });
  console.log(`ok ${tag} 9 1000 in flight`);
  // 7 close: the server echoes a valid code.
  const c = closed(ws);
  ws.close(4001, 'bye');
  const r = await c;
  if (r.code !== 4001) fail('close answered with ' + r.code);
  console.log(`ok ${tag} 7 close`);
}

async function tooBig() {
  const ws = await open(false);
  const c = closed(ws);
  ws.send(Buffer.alloc(maxMessage + 1));
  const r = await c;
  if (r.code !== 1009) fail('message over the limit: close ' + r.code + ', want 1009');
  console.log('ok 9 over the limit: 1009');
}

(async () => {
  await section(false);
  await section(true);
  await tooBig();
  console.log('done');
})().catch((e) => fail(e.stack || String(e)));
