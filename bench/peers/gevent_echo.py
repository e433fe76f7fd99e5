#!/usr/bin/python3
"""gevent-echo: a Zinx-framed echo server on gevent, the baseline that
scripts/bench-python.sh measures Python handlers on the C core against.

    /usr/bin/python3 bench/peers/gevent_echo.py [--port 0] [--format tlv]
                                                [--max-packet 4096]

It is written the way a gevent user writes a Zinx server (the Python port
of Zinx runs on gevent): a StreamServer, one greenlet per connection, a
read loop that cuts frames with struct. Every frame is answered with the
same message ID and payload. The frame layouts are zinx-bench's:
"tlv" (ID u32 big-endian, length u32 big-endian) and "ltv_le" (length u32
little-endian, ID u32 little-endian), each followed by the payload.

It is correct rather than naive: a read may end inside a header or a
payload (the rest waits for the next read) and may hold several frames
(all are answered); the replies to one read go out in one sendall, as a
careful gevent user would write it, so pipelined load is not charged a
system call per frame. A header announcing more than --max-packet bytes
closes the connection at once, before any of that payload is buffered,
as MaxPacketSize does in the C library.

When ready it prints "listening on 127.0.0.1:PORT" (scripts/lib/server.sh
waits for that line); SIGTERM or SIGINT stops it and it exits 0.
"""

import argparse
import signal
import struct
import sys

import gevent
from gevent.event import Event
from gevent.server import StreamServer

HEADER = 8
READ_SIZE = 65536
# The header of each format as zinx-bench's --format names it; both give
# (msg_id, length) after unpacking, whatever the order on the wire.
FORMATS = {
    "tlv": (struct.Struct(">II"), lambda a, b: (a, b)),
    "ltv_le": (struct.Struct("<II"), lambda a, b: (b, a)),
}


def make_handler(fmt, max_packet):
    header, id_len = FORMATS[fmt]
    unpack_from = header.unpack_from

    def handle(sock, _address):
        buf = bytearray()
        try:
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    return
                buf += data
                off = 0
                end = len(buf)
                replies = []
                while end - off >= HEADER:
                    _, length = id_len(*unpack_from(buf, off))
                    if length > max_packet:
                        return  # a bad length: close, buffer nothing more
                    if end - off - HEADER < length:
                        break  # the rest of this frame comes later
                    # The header is echoed as it came: same ID, same
                    # length, same layout.
                    replies.append(buf[off : off + HEADER + length])
                    off += HEADER + length
                if replies:
                    sock.sendall(b"".join(replies))
                del buf[:off]
        except OSError:
            return  # the peer reset or left with replies in flight
        finally:
            sock.close()

    return handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--format", choices=sorted(FORMATS), default="tlv")
    ap.add_argument("--max-packet", type=int, default=4096)
    args = ap.parse_args()

    server = StreamServer(
        (args.host, args.port),
        make_handler(args.format, args.max_packet),
        backlog=4096,
    )
    server.start()
    print("listening on %s:%d" % (args.host, server.server_port), flush=True)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    server.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
