#!/usr/bin/python3
"""Players that walk, for the live map's browser test when zinx-mmo-bots
is not built: zinx-mmo-bots' command line (the options the test uses),
each player a TCP connection sending Move (3) frames, ltv_le, with a
Position {float X=1; Y=2; Z=3; V=4} encoded by hand, taking a random
step inside the world at --move-hz, and a Talk (2) {string Content=1}
now and then at --chat-hz. What the server sends is read and dropped.
Exits 0 after --duration seconds, 1 if the server went away.

    map_walkers.py --host H --port P --players N --duration S --move-hz R
                   [--chat-hz R]
"""
import argparse
import random
import selectors
import socket
import struct
import sys
import time

MIN_X, MAX_X, MIN_Z, MAX_Z = 85.0, 410.0, 75.0, 400.0


def move(x, z):
    fields = b"".join(bytes([(n << 3) | 5]) + struct.pack("<f", v)
                      for n, v in ((1, x), (2, 0.0), (3, z), (4, 0.0)))
    return struct.pack("<II", len(fields), 3) + fields


def talk(text):
    data = text.encode()
    fields = b"\x0a" + bytes([len(data)]) + data  # < 128 bytes
    return struct.pack("<II", len(fields), 2) + fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--players", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--move-hz", type=float, default=1.0)
    ap.add_argument("--chat-hz", type=float, default=0.0)
    a = ap.parse_args()
    sel = selectors.DefaultSelector()
    walkers = []
    for i in range(a.players):
        s = socket.create_connection((a.host, a.port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        # Where the server places newcomers (Zinx's spawn area).
        walkers.append([s, random.uniform(160, 209), random.uniform(134, 183),
                        b"", "hello from walker %d" % i])
    end = time.monotonic() + a.duration
    next_step = time.monotonic()
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.01):
            try:
                if not key.fileobj.recv(65536):
                    return 1
            except BlockingIOError:
                pass
        if time.monotonic() < next_step:
            continue
        next_step += 1.0 / a.move_hz
        for w in walkers:
            if not w[3]:  # a step only once the last one went whole
                w[1] = min(MAX_X, max(MIN_X, w[1] + random.uniform(-5, 5)))
                w[2] = min(MAX_Z, max(MIN_Z, w[2] + random.uniform(-5, 5)))
                w[3] = move(w[1], w[2])
                if random.random() < a.chat_hz / a.move_hz:
                    w[3] += talk(w[4])
            try:
                w[3] = w[3][w[0].send(w[3]):]
            except BlockingIOError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
