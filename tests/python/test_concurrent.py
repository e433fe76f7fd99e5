"""200 clients at once, each doing request/response with a Python handler
on the core's workers: every reply right and on its own connection."""

import threading

from conftest import TIMEOUT, FrameClient, wait_for
from znet.router import BaseRouter

CLIENTS = 200
ROUNDS = 20


class Tagged(BaseRouter):
    """Answers with the connection's id and the payload, so a reply on
    the wrong connection is seen."""

    def Handle(self, request):
        conn = request.GetConnection()
        conn.SendMsg(2, b"%d:" % conn.GetConnID() + request.GetData())


def test_200_concurrent_clients(make_server):
    server = make_server({"WorkerPoolSize": 8})
    server.AddRouter(1, Tagged())
    ids = {}
    lock = threading.Lock()

    def on_start(conn):
        with lock:
            ids[conn.RemoteAddr()[1]] = conn.GetConnID()

    server.SetOnConnStart(on_start)
    server.Start()
    port = server.GetPort()
    barrier = threading.Barrier(CLIENTS)
    errors = []

    def client(n):
        try:
            with FrameClient(port) as c:
                local_port = c.sock.getsockname()[1]
                barrier.wait(TIMEOUT)  # all connected before anyone talks
                wait_for(lambda: local_port in ids, TIMEOUT, "OnConnStart")
                prefix = b"%d:" % ids[local_port]
                for r in range(ROUNDS):
                    data = b"client %d round %d" % (n, r)
                    c.send(1, data)
                    got = c.recv()
                    assert got == (2, prefix + data), (got, data)
        except BaseException as e:
            errors.append("client %d: %r" % (n, e))

    threads = [threading.Thread(target=client, args=(n,))
               for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 3)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert errors == []
    assert len(set(ids.values())) == CLIENTS
    wait_for(lambda: server.GetConnMgr().Len() == 0, TIMEOUT,
             "every connection to end")
