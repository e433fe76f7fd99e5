#!/usr/bin/python3
"""zinx-py-echo: the Zinx echo server written in Python on the C core
(bindings/python), as a user of the Python port writes it: a BaseRouter
whose Handle sends the request's data back under its message ID.

    PYTHONPATH=build/bindings/python:bindings/python \\
        /usr/bin/python3 bench/peers/zinx_py_echo.py [--port 0] \\
        [--format tlv] [--max-packet 4096] [--workers N] [--io-threads 1]

Configured the port's way: conf/zinx.json ($ZINX_CONFIG_FILE_PATH, else
./conf/zinx.json, else the defaults) with the options set on
zconf.GlobalObject before NewServer(); an option not given keeps the
file's value. --workers 0 runs the handlers on the I/O thread.

The router is added for the message IDs 0 to 63 (zinx-bench sends ID 1,
bench/peers/check_echo_peer.py uses 0 to 49), since the Python API has
no catch-all router. When ready it prints "listening on 127.0.0.1:PORT"
(scripts/lib/server.sh waits for that line); SIGTERM or SIGINT stops it
gracefully and it exits 0.
"""

import argparse
import signal
import sys

from zconf import GlobalObject
from znet.router import BaseRouter
from znet.server import NewServer

ECHO_IDS = range(64)


class EchoRouter(BaseRouter):
    def Handle(self, request):
        request.GetConnection().SendMsg(request.GetMsgID(), request.GetData())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--format", choices=("tlv", "ltv_le"))
    ap.add_argument("--max-packet", type=int)
    ap.add_argument("--workers", type=int, help="WorkerPoolSize")
    ap.add_argument("--io-threads", type=int, help="IOThreads")
    args = ap.parse_args()

    GlobalObject.Host = args.host
    GlobalObject.TCPPort = args.port
    if args.format is not None:
        GlobalObject.PacketFormat = args.format
    if args.max_packet is not None:
        GlobalObject.MaxPacketSize = args.max_packet
    if args.workers is not None:
        GlobalObject.WorkerPoolSize = args.workers
    if args.io_threads is not None:
        GlobalObject.IOThreads = args.io_threads

    server = NewServer()
    router = EchoRouter()
    for msg_id in ECHO_IDS:
        server.AddRouter(msg_id, router)

    # The stop signals are taken by sigwait() below, not by a handler: they
    # are blocked before Start() so that every thread the core starts
    # inherits the mask and none of them is picked to receive them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    server.Start()
    print("listening on %s:%d" % (args.host, server.GetPort()), flush=True)
    signal.sigwait(stop_signals)
    server.Stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
