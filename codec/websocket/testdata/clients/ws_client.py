"""Conformance client for codec/websocket's tests, on Python's websockets (Debian's
python3-websockets). It drives an echo server through the Autobahn sections a well-behaved
client can exercise, checks every answer itself, prints "ok <case>" per case and exits 0; a
mismatch prints "FAIL ..." and exits 1.

Usage: /usr/bin/python3 ws_client.py ws://127.0.0.1:PORT/ <server max message bytes>
"""
import asyncio
import sys

import websockets

URL = sys.argv[1]
MAX_MESSAGE = int(sys.argv[2])


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


async def echo(ws, name, payload):
    await ws.send(payload)
    got = await ws.recv()
    if type(got) is not type(payload) or got != payload:
        fail(f"{name}: echo of {len(payload)} came back as {len(got)} ({type(got).__name__})")
    print("ok " + name, flush=True)


async def section(compression):
    tag = "deflate" if compression else "plain"
    async with websockets.connect(URL, compression=compression, max_size=64 << 20, ping_interval=None) as ws:
        if compression and not ws.extensions:
            fail("permessage-deflate not negotiated")
        for n in (0, 125, 126, 127, 128, 65535, 65536):
            await echo(ws, f"{tag} 1 text {n}", "x" * n)
            await echo(ws, f"{tag} 1 binary {n}", b"\xfe" * n)
        pong = await ws.ping(b"ping payload")
        await asyncio.wait_for(pong, 10)
        print(f"ok {tag} 2 ping", flush=True)
        # A message sent as fragments (an iterable): one message comes back.
        await ws.send(["fragments: ", "κόσμε ", "😀 end"])
        got = await ws.recv()
        if got != "fragments: κόσμε 😀 end":
            fail(f"fragmented text echoed as {got!r}")
        print(f"ok {tag} 5 fragmented", flush=True)
        await echo(ws, f"{tag} 6 utf8", "Hello-µ@ßöäüàá-UTF-8!! κόσμε \U0010ffff 😀")
        await echo(ws, f"{tag} 9 text 1 MiB", "BAsd7&jh23" * 104857)
        for i in range(1000):
            await ws.send(f"m{i}")
        for i in range(1000):
            got = await ws.recv()
            if got != f"m{i}":
                fail(f"message {i} came back as {got!r}")
        print(f"ok {tag} 9 1000 in flight", flush=True)
        await ws.close(4001, "bye")
        if ws.close_code != 4001:
            fail(f"close answered with {ws.close_code}")
        print(f"ok {tag} 7 close", flush=True)


async def too_big():
    async with websockets.connect(URL, compression=None, ping_interval=None) as ws:
        try:
            # The server may refuse the message as soon as its header announces the size,
            # and close with 1009 while the client is still writing the payload: then the
            # close arrives during send, not recv (seen on a busy machine).
            await ws.send(b"\x00" * (MAX_MESSAGE + 1))
            await asyncio.wait_for(ws.recv(), 10)
            fail("message over the limit was echoed")
        except websockets.ConnectionClosed as e:
            if e.rcvd is None or e.rcvd.code != 1009:
                fail(f"message over the limit: {e!r}, want close 1009")
    print("ok 9 over the limit: 1009", flush=True)


async def main():
    await section(None)
    await section("deflate")
    await too_big()
    print("done", flush=True)


asyncio.run(main())
