"""The client: NewClient against the Python server, routers and hooks on
the client side, Start raising when nothing listens, Stop ending the
connection on both sides."""

import queue

import pytest

from conftest import TIMEOUT, free_port
from ziface.iclient import IClient
from ziface.iconnection import IConnection
from znet.client import NewClient
from znet.router import BaseRouter


class Echo(BaseRouter):
    """Server side: answers id 1 with id 2, the payload reversed."""

    def Handle(self, request):
        request.GetConnection().SendMsg(2, request.GetData()[::-1])


class Collect(BaseRouter):
    """Client side: puts what the server sent on a queue, and answers the
    server's id 3 pings with id 4."""

    def __init__(self):
        self.got = queue.Queue()

    def Handle(self, request):
        self.got.put((request.GetMsgID(), request.GetData()))
        if request.GetMsgID() == 3:
            request.GetConnection().SendMsg(4, b"pong")


def test_client_routes_the_servers_replies(make_server):
    server_conns = queue.Queue()
    server_stops = queue.Queue()
    pongs = queue.Queue()

    class Pong(BaseRouter):
        def Handle(self, request):
            pongs.put(request.GetData())

    server = make_server()
    server.AddRouter(1, Echo())
    server.AddRouter(4, Pong())
    server.SetOnConnStart(server_conns.put)
    server.SetOnConnStop(lambda c: server_stops.put(c.GetConnID()))
    server.Start()

    collect = Collect()
    client_started = queue.Queue()
    client_stopped = queue.Queue()
    client = NewClient("127.0.0.1", server.GetPort())
    assert isinstance(client, IClient)
    assert client.Conn() is None
    client.AddRouter(2, collect)
    client.AddRouter(3, collect)
    client.SetOnConnStart(client_started.put)
    client.SetOnConnStop(client_stopped.put)
    client.Start()
    try:
        conn = client.Conn()
        assert isinstance(conn, IConnection)
        assert client_started.get(timeout=TIMEOUT) is conn
        assert conn.RemoteAddr() == ("127.0.0.1", server.GetPort())

        for n in range(50):
            conn.SendMsg(1, b"abc%d" % n)
        for n in range(50):
            assert collect.got.get(timeout=TIMEOUT) == (
                2, (b"abc%d" % n)[::-1])

        # The server sends first; the client's router answers.
        sconn = server_conns.get(timeout=TIMEOUT)
        sconn.SendMsg(3, b"ping")
        assert collect.got.get(timeout=TIMEOUT) == (3, b"ping")
        assert pongs.get(timeout=TIMEOUT) == b"pong"
    finally:
        client.Stop()
    assert client_stopped.get(timeout=TIMEOUT) is conn
    assert server_stops.get(timeout=TIMEOUT) == sconn.GetConnID()
    assert not conn.IsAlive()


def test_start_raises_when_nothing_listens():
    client = NewClient("127.0.0.1", free_port(), timeout=2.0)
    with pytest.raises(ConnectionError):
        client.Start()
    assert client.Conn() is None


def test_client_sees_the_server_close(make_server):
    server = make_server()
    server.AddRouter(1, Echo())
    server.SetOnConnStart(lambda c: c.Stop())
    server.Start()
    stopped = queue.Queue()
    client = NewClient("127.0.0.1", server.GetPort())
    client.SetOnConnStop(stopped.put)
    client.Start()
    try:
        # The same connection by ID: when the server's close beats Start's
        # return, the hook's Connection object is no longer kept by the
        # ended connection, so Start wraps it anew.
        conn = stopped.get(timeout=TIMEOUT)
        assert conn.GetConnID() == client.Conn().GetConnID()
        assert stopped.empty()
    finally:
        client.Stop()
