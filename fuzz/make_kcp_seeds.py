#!/usr/bin/env python3
"""Writes the seed-* inputs of fuzz_kcp_segment (layout: the comment at
the top of fuzz/fuzz_kcp_segment.c) into fuzz/corpus/fuzz_kcp_segment/."""
import os
import struct

CONV = 0x01020304
PUSH, ACK, WASK, WINS = 81, 82, 83, 84
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus", "fuzz_kcp_segment")


def seg(cmd, sn=0, data=b"", frg=0, wnd=32, ts=0, una=0, conv=CONV):
    return struct.pack("<IBBHIIII", conv, cmd, frg, wnd, ts, sn, una,
                       len(data)) + data


def op(kind, body=b"", dt=0):
    return bytes([(dt << 2) | kind]) + struct.pack("<H", len(body)) + body


def head(flags0, flags1, clock):
    return bytes([flags0, flags1]) + struct.pack("<I", clock)


# stream, nodelay, nc, MTU 1400, rcv 32 / resend 2, snd 32
STD = (1 | 2 | 4 | (3 << 3) | (5 << 5), 2 | (6 << 3))

seeds = {
    "seed-push-ack": head(*STD, 1000)
    + op(0, seg(PUSH, 0, b"hello"))
    + op(2, b"", 1)
    + op(3, b"\0" * 100)
    + op(1, b"abc")
    + op(2, b"x", 6)
    + op(0, seg(ACK, 0, ts=1016, una=1))
    + op(0, seg(WASK))
    + op(2, b"", 1),
    "seed-message-frags": head(2 | (3 << 3) | (3 << 5), 1 | (3 << 3), 5)
    + op(0, seg(PUSH, 2, b"C" * 10, frg=0))
    + op(0, seg(PUSH, 0, b"A" * 100, frg=2) + seg(PUSH, 1, b"B" * 100, frg=1))
    + op(3, b"\0" * 500)
    + op(1, b"m" * 3000)
    + op(2, b"", 2),
    "seed-wrap": head(*STD[:1], STD[1] | 4, 0xFFFFFF00)
    + b"".join(op(0, seg(PUSH, (0xFFFFFFF0 + i) & 0xFFFFFFFF, bytes([i]) * 7,
                         ts=(0xFFFFFF00 + 16 * i) & 0xFFFFFFFF), 1) for i in range(24))
    + op(3, b"\0" * 200)
    + op(1, b"w" * 2000)
    + op(2, b"", 40),
    "seed-mixed-datagram": head(*STD, 77)
    + op(1, b"q" * 50)
    + op(0, seg(ACK, 0, ts=77) + seg(PUSH, 0, b"xyz") + seg(WINS, wnd=5))
    + op(2, b"", 1)
    + op(3, b"\0" * 3),
    "seed-window-zero": head(1 | (3 << 3) | (2 << 5), 2 | (2 << 3), 0)
    + op(1, b"z" * 5000)
    + op(0, seg(ACK, 0, wnd=0, una=1))
    + b"".join(op(2, b"", 63) for _ in range(12))
    + op(0, seg(WINS, wnd=4, una=1))
    + op(2, b"", 1),
    "seed-bad": head(*STD, 9)
    + op(0, seg(PUSH, 0, b"ok") + seg(PUSH, 1, b"no", conv=5))
    + op(0, seg(PUSH, 1, b"cut")[:-1])
    + op(0, seg(85))
    + op(3, b"\0" * 10),
    "seed-lost": head(2 | 4 | (3 << 3) | (5 << 5), 2 | (6 << 3), 300)
    + op(1, b"r" * 4000)
    + b"".join(op(2, b"", 20) for _ in range(30)),
}

os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
