"""Connection properties: any Python object under a str key, the same
object back, replaced and removed values released at once, and a value
that lives exactly as long as its connection (weakref, sys.getrefcount)."""

import gc
import queue
import sys
import threading
import weakref

import pytest

from conftest import TIMEOUT, FrameClient, wait_for
from znet.router import BaseRouter


class Payload:
    """A value whose life the tests watch through a weakref."""


class Counter(BaseRouter):
    """Counts the messages of each connection in a property."""

    def Handle(self, request):
        conn = request.GetConnection()
        try:
            n = conn.GetProperty("count") + 1
        except KeyError:
            n = 1
        conn.SetProperty("count", n)
        conn.SendMsg(2, b"%d" % n)


def start_server(make_server, router=None, on_start=None, on_stop=None):
    server = make_server()
    server.AddRouter(1, router or Counter())
    server.SetOnConnStart(on_start)
    server.SetOnConnStop(on_stop)
    server.Start()
    return server


def test_set_get_remove_any_object(make_server):
    started = queue.Queue()
    server = start_server(make_server, on_start=started.put)
    with FrameClient(server.GetPort()):
        conn = started.get(timeout=TIMEOUT)
        values = {"int": 42, "none": None, "str": "text", "bytes": b"\0\1",
                  "list": [1, [2]], "dict": {"a": {1, 2}},
                  "func": len, "lambda": lambda x: x + 1, "obj": Payload(),
                  "big": 2 ** 100, "cls": Payload}
        for k, v in values.items():
            conn.SetProperty(k, v)
        for k, v in values.items():
            assert conn.GetProperty(k) is v, k
        assert conn.GetProperty("lambda")(1) == 2
        conn.RemoveProperty("none")
        with pytest.raises(KeyError):
            conn.GetProperty("none")
        with pytest.raises(KeyError):
            conn.RemoveProperty("none")
        with pytest.raises(KeyError):
            conn.GetProperty("never set")
        with pytest.raises(TypeError):
            conn.SetProperty(1, "keys are str")


def test_replaced_and_removed_values_are_released_at_once(make_server):
    started = queue.Queue()
    server = start_server(make_server, on_start=started.put)
    with FrameClient(server.GetPort()):
        conn = started.get(timeout=TIMEOUT)
        a, b = Payload(), Payload()
        ra, rb = weakref.ref(a), weakref.ref(b)
        base = sys.getrefcount(a)
        conn.SetProperty("k", a)
        assert sys.getrefcount(a) == base + 1  # the property's reference
        assert conn.GetProperty("k") is a
        assert sys.getrefcount(a) == base + 1  # GetProperty lent nothing
        del a
        conn.SetProperty("k", b)
        assert ra() is None, "the replaced value was not released"
        del b
        assert rb() is not None
        conn.RemoveProperty("k")
        assert rb() is None, "the removed value was not released"


def test_counter_per_connection(make_server):
    server = start_server(make_server)
    with FrameClient(server.GetPort()) as c1, \
            FrameClient(server.GetPort()) as c2:
        for n in range(1, 6):
            c1.send(1, b"")
            assert c1.recv() == (2, b"%d" % n)
        c2.send(1, b"")
        assert c2.recv() == (2, b"1")


def test_value_lives_exactly_as_long_as_the_connection(make_server):
    state = {}
    stopped = threading.Event()
    kept = []  # the Connection object outlives the connection

    def on_start(conn):
        obj = Payload()
        state["ref"] = weakref.ref(obj)
        conn.SetProperty("obj", obj)
        # A cycle through the core: the connection holds itself.
        conn.SetProperty("self", conn)
        kept.append(conn)

    def on_stop(conn):
        # Still there for the last hook.
        state["alive_in_stop"] = (state["ref"]() is not None and
                                  conn.GetProperty("obj") is state["ref"]())
        stopped.set()

    server = start_server(make_server, on_start=on_start, on_stop=on_stop)
    c = FrameClient(server.GetPort())
    for n in range(1, 4):
        c.send(1, b"")
        assert c.recv() == (2, b"%d" % n)
    wait_for(lambda: "ref" in state, TIMEOUT, "OnConnStart")
    gc.collect()
    obj = state["ref"]()
    assert obj is not None, "released while the connection is alive"
    # The property's reference, obj and getrefcount's argument: nothing
    # else holds it (no leak into the core's or Python's bookkeeping).
    assert sys.getrefcount(obj) == 3
    del obj
    c.close()
    assert stopped.wait(TIMEOUT)
    assert state["alive_in_stop"]
    wait_for(lambda: state["ref"]() is None, TIMEOUT,
             "the property to be released after the connection ended")
    # The Connection object itself is still referenced by the test.
    assert kept and not kept[0].IsAlive()
