"""A Python exception in a handler step or a hook is logged with its
traceback and costs nothing else: the rest of that message's steps are
skipped, the connection's next messages and the server go on."""

import threading

from conftest import TIMEOUT, FrameClient, wait_for
from znet.router import BaseRouter


class Faulty(BaseRouter):
    """Raises in the step the payload names; answers otherwise."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def _record(self, step, request):
        data = request.GetData()
        with self.lock:
            self.calls.append((step, data))
        if data == step.encode():
            raise RuntimeError("%s-bang" % step)

    def PreHandle(self, request):
        self._record("pre", request)

    def Handle(self, request):
        self._record("handle", request)
        request.GetConnection().SendMsg(1, b"handled " + request.GetData())

    def PostHandle(self, request):
        self._record("post", request)
        request.GetConnection().SendMsg(1, b"post " + request.GetData())


def start_hook_fails(conn):
    raise ValueError("start-hook-bang")


stops = []


def stop_hook_fails(conn):
    stops.append(conn.GetConnID())
    raise KeyError("stop-hook-bang")


def test_exceptions_are_logged_and_the_connection_goes_on(make_server,
                                                           capfd):
    router = Faulty()
    server = make_server()
    server.AddRouter(1, router)
    server.SetOnConnStart(start_hook_fails)
    server.SetOnConnStop(stop_hook_fails)
    server.Start()
    port = server.GetPort()
    for round_ in range(2):  # after OnConnStop raised, a new connection
        with FrameClient(port) as c:
            c.send(1, b"pre")       # PreHandle raises: nothing else runs
            c.send(1, b"handle")    # Handle raises before it sends
            c.send(1, b"post")      # Handle sends, then PostHandle raises
            c.send(1, b"fine")
            assert c.recv() == (1, b"handled post")
            assert c.recv() == (1, b"handled fine")
            assert c.recv() == (1, b"post fine")
        wait_for(lambda: len(stops) == round_ + 1, TIMEOUT,
                 "OnConnStop to run")
    with router.lock:
        calls = list(router.calls)
    assert calls == [
        ("pre", b"pre"),
        ("pre", b"handle"), ("handle", b"handle"),
        ("pre", b"post"), ("handle", b"post"), ("post", b"post"),
        ("pre", b"fine"), ("handle", b"fine"), ("post", b"fine"),
    ] * 2
    err = capfd.readouterr().err
    assert err.count("Traceback (most recent call last)") >= 10, err
    for text in ("RuntimeError: pre-bang", "RuntimeError: handle-bang",
                 "RuntimeError: post-bang", "ValueError: start-hook-bang",
                 "KeyError: 'stop-hook-bang'", "in PreHandle", "in Handle",
                 "in PostHandle", "in start_hook_fails",
                 "in stop_hook_fails", "_record"):
        assert text in err, (text, err)


def test_exception_in_one_connection_spares_the_others(make_server):
    router = Faulty()
    server = make_server()
    server.AddRouter(1, router)
    server.Start()
    port = server.GetPort()
    with FrameClient(port) as bad, FrameClient(port) as good:
        for _ in range(20):
            bad.send(1, b"handle")
            good.send(1, b"ok")
            assert good.recv() == (1, b"handled ok")
            assert good.recv() == (1, b"post ok")
        bad.send(1, b"ok")
        assert bad.recv() == (1, b"handled ok")
        assert bad.recv() == (1, b"post ok")
