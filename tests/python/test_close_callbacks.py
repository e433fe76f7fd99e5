"""Close callbacks (Zinx's AddCloseCallback): run once when the
connection ends, right after OnConnStop, in the order added; the same
(handler, key) replaces in place; a removed one never runs; the closures
are released with the connection."""

import threading
import weakref

from conftest import TIMEOUT, FrameClient, wait_for


class Token:
    """Captured by a closure, to watch the closure's life."""


def test_close_callbacks_order_replace_remove_release(make_server):
    events = []
    lock = threading.Lock()
    refs = []

    def note(what):
        with lock:
            events.append(what)

    def closure(name):
        token = Token()
        refs.append(weakref.ref(token))
        return lambda: note((name, token is not None))

    def on_start(conn):
        conn.AddCloseCallback("h", 1, closure("first"))
        conn.AddCloseCallback("h", 2, closure("second"))
        conn.AddCloseCallback("other", 1, closure("third"))
        conn.AddCloseCallback("h", 1, closure("first-replaced"))
        conn.AddCloseCallback("gone", 0, closure("removed"))
        conn.RemoveCloseCallback("gone", 0)
        conn.RemoveCloseCallback("never", "added")  # nothing happens
        note("start")

    server = make_server()
    server.SetOnConnStart(on_start)
    server.SetOnConnStop(lambda conn: note("stop"))
    server.Start()
    c = FrameClient(server.GetPort())
    wait_for(lambda: "start" in events, TIMEOUT, "OnConnStart")
    # The replaced and the removed closures are released at once.
    assert refs[0]() is None and refs[4]() is None
    assert all(r() is not None for r in (refs[1], refs[2], refs[3]))
    c.close()
    wait_for(lambda: len(events) == 5, TIMEOUT, "the close callbacks")
    assert events == ["start", "stop", ("first-replaced", True),
                      ("second", True), ("third", True)]
    wait_for(lambda: all(r() is None for r in refs), TIMEOUT,
             "the closures to be released")
