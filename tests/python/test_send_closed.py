"""SendMsg refuses at once what the library would refuse later: inside a
handler (where sends are queued until it returns) as outside, a send to a
connection that has ended raises ConnectionError, and one over
MaxPacketSize raises ValueError, instead of being lost silently."""

import threading

from conftest import FrameClient, wait_for
from znet.router import BaseRouter


class Relay(BaseRouter):
    """Message 2 sends to the connection the payload names and answers
    with what SendMsg did."""

    def __init__(self, conns):
        self.conns = conns

    def Handle(self, request):
        target = self.conns[int(request.GetData())]
        try:
            target.SendMsg(7, b"relayed")
            outcome = b"sent"
        except ConnectionError:
            outcome = b"ConnectionError"
        try:
            request.GetConnection().SendMsg(1, bytes(5000))
        except ValueError:
            outcome += b" ValueError"
        request.GetConnection().SendMsg(2, outcome)


def test_send_to_an_ended_connection_raises(make_server):
    conns = {}
    stopped = set()
    lock = threading.Lock()

    def on_start(conn):
        with lock:
            conns[conn.GetConnID()] = conn

    def on_stop(conn):
        with lock:
            stopped.add(conn.GetConnID())

    server = make_server({"MaxPacketSize": 4096})
    server.AddRouter(2, Relay(conns))
    server.SetOnConnStart(on_start)
    server.SetOnConnStop(on_stop)
    server.Start()
    port = server.GetPort()
    with FrameClient(port) as asker:
        with FrameClient(port) as target:
            wait_for(lambda: len(conns) == 2, what="both connections")
            target_id = max(conns)
            asker.send(2, str(target_id).encode())
            assert asker.recv() == (2, b"sent ValueError")
            assert target.recv() == (7, b"relayed")
        wait_for(lambda: target_id in stopped, what="the target's end")
        asker.send(2, str(target_id).encode())
        assert asker.recv() == (2, b"ConnectionError ValueError")
        # Outside a handler too (sent at once, the GIL released).
        ended = conns[target_id]
        try:
            ended.SendMsg(7, b"late")
            raised = False
        except ConnectionError:
            raised = True
        assert raised
