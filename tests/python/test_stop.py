"""Stopping: Stop() from a handler makes Serve() return; SIGINT and
SIGTERM make Serve() return after a graceful stop (a handler running
then finishes, its reply is sent, OnConnStop runs for every
connection)."""

import re
import signal
import socket
import threading
import time

import pytest

from conftest import TIMEOUT, FrameClient, Program, free_port, write_config
from znet.router import BaseRouter


def connect_retry(port, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return FrameClient(port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_stop_from_a_handler_makes_serve_return(make_server):
    port = free_port()
    server = make_server({"TCPPort": port})

    class Stopper(BaseRouter):
        def Handle(self, request):
            request.GetConnection().SendMsg(2, b"bye")
            server.Stop()

    server.AddRouter(1, Stopper())
    stops = []
    server.SetOnConnStop(lambda c: stops.append(c.GetConnID()))
    outcome = {}

    def client():
        try:
            with connect_retry(port) as c:
                c.send(1, b"stop please")
                outcome["reply"] = c.recv()
                c.expect_eof()
                outcome["eof"] = True
        except Exception as e:  # reported by the assertions below
            outcome["error"] = repr(e)

    def watchdog():
        outcome["timed_out"] = True
        server.Stop()

    t = threading.Thread(target=client)
    dog = threading.Timer(TIMEOUT, watchdog)
    t.start()
    dog.start()
    try:
        server.Serve()
    finally:
        dog.cancel()
        t.join(TIMEOUT)
    assert "timed_out" not in outcome, "Serve() did not return"
    assert outcome.get("reply") == (2, b"bye"), outcome
    assert outcome.get("eof"), outcome
    assert len(stops) == 1, "OnConnStop must have run before Serve returned"


SERVE_SCRIPT = r'''
import sys
import time
from znet.server import NewServer
from znet.router import BaseRouter

def say(line):
    # One write per line: hooks of several connections print at once.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()

class Slow(BaseRouter):
    def Handle(self, request):
        say("handling")
        time.sleep(0.5)
        request.GetConnection().SendMsg(2, b"late " + request.GetData())

server = NewServer()
server.AddRouter(1, Slow())
server.SetOnConnStart(lambda c: say("start %d" % c.GetConnID()))
server.SetOnConnStop(lambda c: say("stop %d" % c.GetConnID()))
server.Serve()
say("served")
'''


@pytest.mark.parametrize("signo", [signal.SIGINT, signal.SIGTERM],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_makes_serve_return_gracefully(tmp_path, signo):
    port = free_port()
    write_config(str(tmp_path), TCPPort=port)
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    prog = Program(str(script), cwd=str(tmp_path))
    clients = []
    try:
        clients.append(prog.connect(port))
        clients += [FrameClient(port) for _ in range(2)]
        ids = set()
        for _ in clients:
            line = prog.wait_line(lambda l: l.startswith("start "))
            ids.add(int(line.split()[1]))
        assert len(ids) == 3
        clients[0].send(1, b"a")
        prog.wait_line(lambda l: l == "handling")
        prog.proc.send_signal(signo)
        # The handler that was running finishes and its reply is sent
        # before the connection closes.
        assert clients[0].recv() == (2, b"late a")
        for c in clients:
            c.expect_eof()
        assert prog.wait_exit() == 0, prog.err
        stopped = {int(m.group(1)) for m in
                   (re.fullmatch(r"stop (\d+)", l) for l in prog.out) if m}
        assert stopped == ids, prog.out
        assert prog.out[-1] == "served", prog.out
        assert not any("Traceback" in l for l in prog.err), prog.err
    finally:
        for c in clients:
            c.close()
        prog.kill()


def test_serve_raises_when_it_cannot_start(make_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = make_server({"TCPPort": taken.getsockname()[1]})
        old = signal.getsignal(signal.SIGTERM)
        with pytest.raises(OSError):
            server.Serve()
        # Serve() put the SIGTERM handler it had replaced back.
        assert signal.getsignal(signal.SIGTERM) is old
