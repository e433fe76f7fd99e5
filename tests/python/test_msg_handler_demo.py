"""Zinx's message-handler demo (the multi-router chapter): two routers, ids
0 and 1, each answering with its own message; and the router glue of
BaseRouter (order of the steps, steps left out, duplicate ids)."""

import threading

import pytest

from conftest import TIMEOUT, FrameClient, wait_for
from ziface.irouter import IRouter
from znet.router import BaseRouter, steps_of


class PingRouter(BaseRouter):
    def Handle(self, request):
        request.GetConnection().SendMsg(200, b"ping...ping...ping")


class HelloZinxRouter(BaseRouter):
    def Handle(self, request):
        request.GetConnection().SendMsg(201, b"Hello Welcome to Zinx")


def test_two_routers_answer_by_id(make_server):
    server = make_server()
    server.AddRouter(0, PingRouter())
    server.AddRouter(1, HelloZinxRouter())
    server.Start()
    port = server.GetPort()
    assert port > 0
    clients = [FrameClient(port) for _ in range(2)]
    try:
        for n in range(20):
            for i, c in enumerate(clients):
                msg_id = (n + i) % 2
                c.send(msg_id, b"Zinx V0.6 Client%d Test Message" % i)
                if msg_id == 0:
                    assert c.recv() == (200, b"ping...ping...ping")
                else:
                    assert c.recv() == (201, b"Hello Welcome to Zinx")
    finally:
        for c in clients:
            c.close()


class Steps(BaseRouter):
    """Every step records itself and answers, so the order is visible on
    the wire too."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def _step(self, request, name):
        with self.lock:
            self.seen.append((name, request.GetData()))
        request.GetConnection().SendMsg(7, name.encode() + b":" +
                                        request.GetData())

    def PreHandle(self, request):
        self._step(request, "pre")

    def Handle(self, request):
        assert request.GetMsgID() == 5
        self._step(request, "handle")

    def PostHandle(self, request):
        self._step(request, "post")


def test_steps_run_in_order(make_server):
    server = make_server()
    router = Steps()
    server.AddRouter(5, router)
    server.Start()
    with FrameClient(server.GetPort()) as c:
        for n in range(10):
            data = b"m%d" % n
            c.send(5, data)
            assert [c.recv() for _ in range(3)] == [
                (7, b"pre:" + data), (7, b"handle:" + data),
                (7, b"post:" + data)]
    assert [s for s, _ in router.seen] == ["pre", "handle", "post"] * 10


def test_only_overridden_steps_are_given_to_the_core():
    class OnlyHandle(BaseRouter):
        def Handle(self, request):
            pass

    r = OnlyHandle()
    pre, handle, post = steps_of(r)
    assert pre is None and post is None
    assert handle == r.Handle
    assert steps_of(BaseRouter()) == (None, None, None)
    # A step set on the instance counts as overridden.
    r.PostHandle = lambda request: None
    assert steps_of(r)[2] is r.PostHandle

    class Full(IRouter):
        def PreHandle(self, request):
            pass

        def Handle(self, request):
            pass

        def PostHandle(self, request):
            pass

    assert None not in steps_of(Full())
    with pytest.raises(TypeError):
        steps_of(object())


def test_add_router_refuses_duplicates_and_late_routes(make_server):
    server = make_server()
    server.AddRouter(1, PingRouter())
    with pytest.raises(ValueError):
        server.AddRouter(1, HelloZinxRouter())
    server.Start()
    with pytest.raises(RuntimeError):
        server.AddRouter(2, HelloZinxRouter())
    # The first router is still the one that answers.
    with FrameClient(server.GetPort()) as c:
        c.send(1, b"x")
        assert c.recv() == (200, b"ping...ping...ping")


def test_unknown_id_has_no_answer_but_the_connection_goes_on(make_server):
    server = make_server()
    server.AddRouter(0, PingRouter())
    server.Start()
    with FrameClient(server.GetPort()) as c:
        c.send(99, b"nobody")
        c.send(0, b"ping")
        assert c.recv() == (200, b"ping...ping...ping")
    wait_for(lambda: server.GetConnMgr().Len() == 0, TIMEOUT,
             "the connection to end")
