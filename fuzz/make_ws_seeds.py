#!/usr/bin/env python3
"""Writes the hand-made seeds of the WebSocket fuzz targets.

    python3 fuzz/make_ws_seeds.py [fuzz/corpus]

Layouts: see the top of fuzz_ws_frame.c and fuzz_ws_http.c.
"""
import os
import struct
import sys


def frame(op, payload=b"", fin=True, mask=b"\x01\x02\x03\x04", rsv=0):
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def tlv(msg_id, data):
    return struct.pack(">II", msg_id, len(data)) + data


def frame_seeds():
    z = tlv(1, b"hello") + tlv(2, b"world")
    server = 1 | (5 << 1)  # server role, 1 KiB messages
    client = 0 | (5 << 1)
    yield "binary", bytes([server, 7]) + frame(2, z)
    yield "fragmented", bytes([server, 3]) + frame(2, z[:5], fin=False) + \
        frame(0, z[5:9], fin=False) + frame(9, b"ping") + frame(0, z[9:])
    yield "control", bytes([server, 1]) + frame(9, b"p") + frame(10) + \
        frame(8, struct.pack(">H", 1000) + b"bye")
    yield "text", bytes([server, 0]) + frame(1, b"text")
    yield "unmasked", bytes([server, 0]) + frame(2, b"x", mask=None)
    yield "rsv", bytes([server, 0]) + frame(2, b"x", rsv=0x40)
    yield "too-big", bytes([server, 9]) + frame(2, bytes(2000))
    yield "len16", bytes([1 | (6 << 1), 11]) + frame(2, bytes(300))
    yield "client", bytes([client, 5]) + frame(2, z, mask=None) + \
        frame(8, b"", mask=None)
    yield "bad-close", bytes([server, 2]) + frame(8, struct.pack(">H", 1005))


REQ = (b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
       b"Connection: keep-alive, Upgrade\r\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       b"Sec-WebSocket-Version: 13\r\nOrigin: http://o\r\n\r\n")
RESP = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def http_seeds():
    yield "request", b"\x00" + REQ + b"\x82\x80abcd"
    yield "wrong-path", b"\x00" + REQ.replace(b"/ws?", b"/x?")
    yield "version", b"\x00" + REQ.replace(b"Version: 13", b"Version: 8")
    yield "folded", b"\x00" + REQ.replace(b"Host: a\r\n", b"Host: a\r\n b\r\n")
    yield "post", b"\x00" + REQ.replace(b"GET", b"POST")
    yield "response", b"\x01" + RESP
    yield "refused", b"\x01" + b"HTTP/1.1 404 Not Found\r\n\r\n"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for target, seeds in (("fuzz_ws_frame", frame_seeds()),
                          ("fuzz_ws_http", http_seeds())):
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds:
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
