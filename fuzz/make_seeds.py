#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets.

    python3 fuzz/make_seeds.py [fuzz/corpus]

Seeds are named seed-*; inputs the fuzzers found are added next to them
under their SHA-1 names (see docs/fuzzing-and-soak.md). The input layouts
are described at the top of each fuzz_*.c.
"""
import os
import struct
import sys

MARK = b"--MARK--"

# fuzz_decoder: indexes into max_table[] of fuzz_decoder.c.
MAX_0, MAX_1, MAX_8, MAX_64, MAX_255, MAX_4096, MAX_64K, MAX_U32 = range(8)


def tlv(msg_id, data=b"", length=None):
    n = len(data) if length is None else length
    return struct.pack(">II", msg_id, n) + data


def ltv(msg_id, data=b"", length=None):
    n = len(data) if length is None else length
    return struct.pack("<II", n, msg_id) + data


def decoder_input(max_a, max_b, plan, stream):
    assert len(plan) < 16
    return bytes([max_a | (max_b << 4), len(plan)]) + bytes(plan) + stream


def decoder_seeds():
    s = {}
    payload60 = bytes(range(60))
    for name, enc in (("tlv", tlv), ("ltv", ltv)):
        stream = (enc(1, b"ping") + enc(2) + enc(3, payload60) +
                  enc(0xFFFFFFFF, b"x") + enc(0, b""))
        s[f"{name}-stream"] = decoder_input(MAX_4096, MAX_U32, [], stream)
        s[f"{name}-stream-bytes"] = decoder_input(MAX_64, MAX_64K, [0],
                                                  stream)
        s[f"{name}-stream-chunks"] = decoder_input(MAX_64, MAX_255,
                                                   [0, 2, 6, 7, 12, 254],
                                                   stream)
        s[f"{name}-zero-len"] = decoder_input(MAX_0, MAX_1, [3],
                                              enc(7) * 12)
        s[f"{name}-oversize-by-one"] = decoder_input(
            MAX_64, MAX_255, [5], enc(1, b"a") + enc(2, bytes(65)))
        s[f"{name}-len-7fffffff"] = decoder_input(
            MAX_64K, MAX_U32, [], enc(1, b"hi") + enc(9, length=0x7FFFFFFF))
        s[f"{name}-len-ffffffff"] = decoder_input(
            MAX_4096, MAX_U32, [1], enc(9, length=0xFFFFFFFF))
        s[f"{name}-len-wraps"] = decoder_input(
            MAX_8, MAX_U32, [], enc(9, length=0xFFFFFFF8) + bytes(16))
        s[f"{name}-header-cut"] = decoder_input(MAX_64, MAX_U32, [],
                                                enc(1, b"abc") + enc(2)[:5])
        s[f"{name}-payload-cut"] = decoder_input(
            MAX_255, MAX_4096, [2], enc(1, b"abc") + enc(2, bytes(40))[:30])
        s[f"{name}-max-0-then-1"] = decoder_input(MAX_0, MAX_8, [],
                                                  enc(1) + enc(2, b"z"))
        s[f"{name}-big-frame"] = decoder_input(
            MAX_4096, MAX_64K, [254, 254, 100], enc(5, bytes(3000)))
    s["empty"] = b""
    s["one-byte"] = b"\x55"
    s["no-stream"] = decoder_input(MAX_64, MAX_U32, [1, 2], b"")
    return s


# fuzz_connection flags: variant | end mode << 2 | pace | tcp.
V_INLINE_TLV, V_WORKER_TLV, V_INLINE_LTV_BIG, V_WORKER_LTV = range(4)
HALF_CLOSE, ABORT, HALF_ABORT, READ_ABORT = range(4)
PACE, TCP = 0x10, 0x20
ENC = {V_INLINE_TLV: tlv, V_WORKER_TLV: tlv, V_INLINE_LTV_BIG: ltv,
       V_WORKER_LTV: ltv}


def conn_input(variant, mode, segments, pace=False, use_tcp=False):
    flags = variant | (mode << 2) | (PACE if pace else 0) | \
        (TCP if use_tcp else 0)
    return bytes([flags]) + MARK.join(segments)


def split_every(data, n):
    return [data[i:i + n] for i in range(0, len(data), n)]


def connection_seeds():
    s = {}
    for v, enc in ENC.items():
        echo = enc(1, b"hello") + enc(2) + enc(3, b"x" * 40)
        s[f"v{v}-echo"] = conn_input(v, HALF_CLOSE, [echo])
        s[f"v{v}-echo-split"] = conn_input(
            v, HALF_CLOSE, [echo[:3], echo[3:11], echo[11:20], echo[20:]],
            pace=True)
        s[f"v{v}-echo-tcp-abort"] = conn_input(v, ABORT, [echo],
                                               use_tcp=True)
        s[f"v{v}-close-then-more"] = conn_input(
            v, HALF_CLOSE, [enc(1, b"a") + enc(4, b"bye"), enc(2, b"late")])
        s[f"v{v}-close-now"] = conn_input(
            v, HALF_CLOSE, [enc(1, b"a") + enc(5) + enc(2, b"lost")])
        s[f"v{v}-burst"] = conn_input(
            v, HALF_CLOSE, [enc(6, b"\x07burst") + enc(6) + enc(1)])
        s[f"v{v}-unknown"] = conn_input(
            v, HALF_CLOSE, [b"".join(enc(100 + i, b"?") for i in range(6))])
        s[f"v{v}-oversize"] = conn_input(
            v, HALF_CLOSE, [enc(1, b"ok") + enc(2, length=0xFFFFFFFF)])
        s[f"v{v}-zero-len-flood"] = conn_input(v, HALF_CLOSE,
                                               [enc(1) * 64])
        s[f"v{v}-truncated-tail"] = conn_input(
            v, HALF_CLOSE, [enc(1, b"whole") + enc(2, b"cut off")[:9]])
        s[f"v{v}-read-abort"] = conn_input(v, READ_ABORT,
                                           [enc(6, b"\x05" * 30) * 4])
        s[f"v{v}-half-abort"] = conn_input(v, HALF_ABORT,
                                           [enc(3, b"y" * 30) * 8])
    frames = tlv(1, b"one") + tlv(2, b"two")
    s["v0-byte-segments"] = conn_input(V_INLINE_TLV, HALF_CLOSE,
                                       split_every(frames, 1), pace=True)
    s["v1-byte-segments"] = conn_input(V_WORKER_TLV, HALF_CLOSE,
                                       split_every(frames, 1))
    s["v1-queue-full"] = conn_input(V_WORKER_TLV, HALF_CLOSE,
                                    [tlv(1, bytes([i])) * 1 for i in
                                     range(40)])
    s["v1-close-now-then-send"] = conn_input(
        V_WORKER_TLV, HALF_CLOSE,
        [tlv(1, b"first") * 100 + tlv(5) + tlv(1, b"late") * 100])
    s["v1-max-frame"] = conn_input(V_WORKER_TLV, HALF_CLOSE,
                                   [tlv(1, bytes(64)), tlv(2, bytes(65))])
    s["v2-frame-over-read-buffer"] = conn_input(
        V_INLINE_LTV_BIG, HALF_CLOSE,
        [ltv(1, b"a") + ltv(2, length=100000) + bytes(3000)])
    s["v2-oversize-notice"] = conn_input(
        V_INLINE_LTV_BIG, HALF_CLOSE, [ltv(1, b"a"), ltv(2, length=200001)])
    s["v3-fallback-none"] = conn_input(
        V_WORKER_LTV, HALF_CLOSE, [ltv(77, b"dropped") + ltv(1, b"kept")])
    s["empty"] = b""
    s["flags-only"] = b"\x20"
    s["marks-only"] = bytes([V_INLINE_TLV]) + MARK * 5
    return s


def crc16_modbus(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def htlv(func, body, head=0xA2, bad=False):
    f = bytes([head, func, len(body)]) + body
    crc = crc16_modbus(f) ^ (0x0101 if bad else 0)
    return f + struct.pack("<H", crc)


def length_field_input(size_idx, little, offset, adj, strip, max_i, pkt_i,
                       chunk, stream):
    """The parameter bytes of fuzz_length_field.c, then the stream."""
    return bytes([size_idx | (8 if little else 0), offset, adj & 0xFF, strip,
                  max_i | (pkt_i << 4), chunk - 1]) + stream


def length_field_seeds():
    s = {}
    payload = bytes(range(40))
    tlv_stream = tlv(1, b"ping") + tlv(2) + tlv(3, payload)
    # Zinx's TLV preset: offset 4, length 4 (size index 3).
    s["tlv-preset"] = length_field_input(3, False, 4, 0, 0, 0, MAX_4096, 5,
                                         tlv_stream)
    s["tlv-preset-strip8"] = length_field_input(3, False, 4, 0, 8, 0,
                                                MAX_4096, 3, tlv_stream)
    # LTV preset: offset 0, length 4, adjustment 4, little-endian.
    s["ltv-preset"] = length_field_input(
        3, True, 0, 4, 0, 0, MAX_4096, 7,
        ltv(1, b"ping") + ltv(2) + ltv(3, payload))
    # HTLV preset: offset 2, length 1, adjustment 2.
    s["htlv-preset"] = length_field_input(
        0, False, 2, 2, 0, 0, MAX_4096, 2,
        htlv(0x10, payload[:14]) + htlv(0x15, b""))
    # Oversize frames to skip (max 64), then a good one.
    s["skip-oversize"] = length_field_input(
        1, False, 0, 0, 0, MAX_64, MAX_4096, 9,
        struct.pack(">H", 100) + bytes(100) + struct.pack(">H", 3) + b"abc")
    # 8-byte lengths: a good one, then one above 2^63.
    s["len8-huge"] = length_field_input(
        4, True, 0, 0, 0, 0, MAX_4096, 4,
        struct.pack("<Q", 2) + b"hi" + struct.pack("<Q", (1 << 63) + 5))
    s["len4-2p32m1"] = length_field_input(
        3, False, 0, 0, 4, MAX_U32, MAX_4096, 16,
        struct.pack(">I", 0xFFFFFFFF) + bytes(20))
    s["negative-adjustment"] = length_field_input(
        2, False, 1, -20, 0, 0, MAX_4096, 1, b"\x00\x00\x00\x05" + bytes(8))
    s["len3-strip"] = length_field_input(
        2, True, 2, -1, 6, 0, MAX_255, 4,
        b"ab" + struct.pack("<I", 9)[:3] + bytes(8) + b"cd" +
        struct.pack("<I", 5)[:3] + bytes(4))
    return s


def htlv_seeds():
    s = {}
    frames = (htlv(0x10, bytes(range(1, 15))) +
              htlv(0x13, b"\x00\x00\x12\x34\x01\x00") +
              htlv(0x14, b"\x01") + htlv(0x15, b"") +
              htlv(0x16, bytes(range(0x20, 0x30))))
    s["zinx-example-codes"] = bytes([6, 4]) + frames
    s["bad-crc-between"] = bytes([6, 2]) + (
        htlv(0x10, b"abc") + htlv(0x13, b"bad", bad=True) + htlv(0x14, b"ok"))
    s["len-over-max"] = bytes([3, 0]) + (
        htlv(0x16, bytes(100)) + htlv(0x10, b"small"))
    s["len-255"] = bytes([5, 30]) + htlv(0x7F, bytes(255)) + htlv(0x15, b"")
    s["cut-header"] = bytes([6, 0]) + b"\xa2\x10"
    s["empty"] = b""
    return s


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY_V1, PROXY_V2, PROXY_EITHER = 0, 1, 2  # byte 0 of fuzz_proxy_header


def proxy_v2(cmd, fam, body):
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(body)) + body


def proxy_header_seeds():
    s = {}
    inet = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 1000, 443)
    inet6 = (bytes(15) + b"\x01" + b"\x20\x01\x0d\xb8" + bytes(11) + b"\x07" +
             struct.pack(">HH", 5, 80))
    frame = tlv(1, b"ping")
    s["v1-tcp4"] = bytes([PROXY_V1]) + (
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + frame)
    s["v1-tcp6"] = bytes([PROXY_EITHER]) + (
        b"PROXY TCP6 2001:db8::1 ::ffff:10.1.2.3 1 65535\r\n")
    s["v1-unknown"] = bytes([PROXY_V1]) + b"PROXY UNKNOWN whatever\r\n"
    s["v1-longest"] = bytes([PROXY_V1]) + (
        b"PROXY TCP6 " + b":".join([b"ffff"] * 8) + b" " +
        b":".join([b"ffff"] * 8) + b" 65535 65535\r\n")
    s["v1-two-spaces"] = bytes([PROXY_V1]) + (
        b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n")
    s["v1-no-crlf"] = bytes([PROXY_V1]) + b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"
    s["v2-inet"] = bytes([PROXY_V2]) + proxy_v2(1, 0x11, inet) + frame
    s["v2-inet6"] = bytes([PROXY_EITHER]) + proxy_v2(1, 0x21, inet6)
    s["v2-unix"] = bytes([PROXY_V2]) + proxy_v2(1, 0x31, b"/run/x" + bytes(210))
    s["v2-local"] = bytes([PROXY_V2]) + proxy_v2(0, 0x00, b"")
    s["v2-tlvs"] = bytes([PROXY_V2]) + proxy_v2(
        1, 0x11, inet + b"\x01\x00\x02h2" + b"\x04\x00\x03" + bytes(3))
    s["v2-tlv-over"] = bytes([PROXY_V2]) + proxy_v2(
        1, 0x11, inet + b"\x01\x00\x09h2")
    s["v2-udp"] = bytes([PROXY_EITHER]) + proxy_v2(1, 0x12, inet)
    s["v2-long"] = bytes([PROXY_V2]) + (
        V2_SIG + b"\x21\x11" + struct.pack(">H", 1009) + inet)
    s["v2-in-v1-mode"] = bytes([PROXY_V1]) + proxy_v2(1, 0x11, inet)
    s["garbage"] = bytes([PROXY_EITHER]) + frame
    s["empty"] = b""
    return s


def write_all(root, target, seeds):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{d}: {len(seeds)} seeds")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    write_all(root, "fuzz_decoder", decoder_seeds())
    write_all(root, "fuzz_connection", connection_seeds())
    write_all(root, "fuzz_length_field", length_field_seeds())
    write_all(root, "fuzz_htlv_crc", htlv_seeds())
    write_all(root, "fuzz_proxy_header", proxy_header_seeds())


if __name__ == "__main__":
    main()
