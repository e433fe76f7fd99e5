#!/usr/bin/python3
"""Checks that a Zinx-framed echo server frames correctly, the cases a
load generator does not reach: a frame cut inside its header and inside
its payload, several frames in one write, an empty payload, and a header
announcing more than the server's maximum, which must close the
connection.

    /usr/bin/python3 bench/peers/check_echo_peer.py --format tlv \
        --max-packet 4096 -- /usr/bin/python3 bench/peers/gevent_echo.py

The server command is started with "--port 0 --format F --max-packet N"
appended, must print "listening on HOST:PORT", and is stopped with
SIGTERM; a stop that takes more than 10 s is a failure. Exit status 0
when every case holds, 1 with a message otherwise.
"""

import argparse
import socket
import struct
import subprocess
import sys
import time

LAYOUT = {"tlv": (">II", False), "ltv_le": ("<II", True)}


def frame(fmt, msg_id, payload):
    layout, len_first = LAYOUT[fmt]
    a, b = (len(payload), msg_id) if len_first else (msg_id, len(payload))
    return struct.pack(layout, a, b) + payload


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise AssertionError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def check_cut_frames(port, fmt):
    """A header and a payload that arrive in pieces, then echo in one."""
    want = frame(fmt, 7, b"abcdefghij" * 30)
    with connect(port) as s:
        for piece in (want[:3], want[3:8], want[8:100], want[100:]):
            s.sendall(piece)
            time.sleep(0.02)  # each piece is its own read on the server
        got = recv_exact(s, len(want))
    assert got == want, "cut frame echoed wrongly"


def check_several_per_write(port, fmt):
    """Many frames, one empty, in one write: every one answered in order."""
    frames = [frame(fmt, i, bytes([i]) * i) for i in range(50)]
    want = b"".join(frames)
    with connect(port) as s:
        s.sendall(want)
        got = recv_exact(s, len(want))
    assert got == want, "several frames in one write echoed wrongly"


def check_bad_length(port, fmt, max_packet):
    """An oversize header closes the connection, without waiting for it."""
    with connect(port) as s:
        s.sendall(frame(fmt, 1, b"ok"))
        assert recv_exact(s, 10) == frame(fmt, 1, b"ok")
        layout, len_first = LAYOUT[fmt]
        big = max_packet + 1
        s.sendall(struct.pack(layout, *((big, 1) if len_first else (1, big))))
        try:
            rest = s.recv(1)
        except ConnectionResetError:
            rest = b""
        assert rest == b"", "an oversize header did not close the connection"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", choices=sorted(LAYOUT), default="tlv")
    ap.add_argument("--max-packet", type=int, default=4096)
    ap.add_argument("server", nargs="+")
    args = ap.parse_args()
    cmd = args.server + [
        "--port", "0", "--format", args.format,
        "--max-packet", str(args.max_packet),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            print("server did not start: %r" % line, file=sys.stderr)
            return 1
        port = int(line.rsplit(":", 1)[1])
        check_cut_frames(port, args.format)
        check_several_per_write(port, args.format)
        check_bad_length(port, args.format, args.max_packet)
    except (AssertionError, OSError) as e:
        print("FAILED (%s): %s" % (args.format, e), file=sys.stderr)
        return 1
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "no stop within 10 s"
    if rc != 0:
        print("FAILED: the server's exit status: %s" % rc, file=sys.stderr)
        return 1
    print("ok (%s)" % args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
