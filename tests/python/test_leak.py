"""100,000 connections opened and closed in batches, each with a property
holding a Python object and its Connection object kept a while by Python:
afterwards no property value is alive, and RSS and the number of live
Python objects grew by a bounded amount (measured after a warm-up, so
allocator pools and caches that fill once are not counted)."""

import collections
import gc
import os
import socket
import threading

from conftest import SLOW, TIMEOUT, wait_for
from znet.router import BaseRouter

TOTAL = int(os.environ.get("ZINX_PY_LEAK_CONNS", "100000"))
BATCH = 2000   # 2 descriptors each in this process: far under 20,000
WARMUP = int(os.environ.get("ZINX_PY_LEAK_WARMUP", "10000"))


class Tracked:
    """The property value: counts its live instances."""

    live = 0
    lock = threading.Lock()

    def __init__(self, conn_id):
        self.conn_id = conn_id
        self.blob = bytearray(64)
        with Tracked.lock:
            Tracked.live += 1

    def __del__(self):
        with Tracked.lock:
            Tracked.live -= 1


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class Noop(BaseRouter):
    def Handle(self, request):
        pass


def test_100k_connections_leave_nothing_behind(make_server):
    server = make_server({"MaxConn": BATCH + 100})
    server.AddRouter(1, Noop())
    counts = {"start": 0, "stop": 0}
    lock = threading.Lock()
    recent = collections.deque(maxlen=500)  # Connections kept briefly

    def on_start(conn):
        conn.SetProperty("tracked", Tracked(conn.GetConnID()))
        recent.append(conn)
        with lock:
            counts["start"] += 1

    def on_stop(conn):
        assert conn.GetProperty("tracked").conn_id == conn.GetConnID()
        with lock:
            counts["stop"] += 1

    server.SetOnConnStart(on_start)
    server.SetOnConnStop(on_stop)
    server.Start()
    addr = ("127.0.0.1", server.GetPort())

    def churn(n):
        done = 0
        while done < n:
            k = min(BATCH, n - done)
            before = counts["start"]
            socks = [socket.create_connection(addr, TIMEOUT)
                     for _ in range(k)]
            wait_for(lambda: counts["start"] == before + k, TIMEOUT * 2,
                     "OnConnStart of the batch")
            for s in socks:
                s.close()
            wait_for(lambda: counts["stop"] == counts["start"],
                     TIMEOUT * 2, "OnConnStop of the batch")
            done += k

    churn(WARMUP)
    recent.clear()
    gc.collect()
    wait_for(lambda: Tracked.live == 0, TIMEOUT, "warm-up values released")
    rss0, objs0 = rss_kib(), len(gc.get_objects())

    churn(TOTAL)
    # Connections the test still holds: their properties are gone anyway.
    assert len(recent) == 500
    assert all(not c.IsAlive() for c in recent)
    wait_for(lambda: Tracked.live == 0, TIMEOUT,
             "every property value released (%d alive)" % Tracked.live)
    recent.clear()
    gc.collect()
    rss1, objs1 = rss_kib(), len(gc.get_objects())
    print("connections %d: RSS %d -> %d KiB (%+d), gc objects %d -> %d"
          % (TOTAL, rss0, rss1, rss1 - rss0, objs0, objs1))
    assert counts["start"] == counts["stop"] == TOTAL + WARMUP
    assert server.GetConnMgr().Len() == 0
    # A leak of one object or 100 bytes per connection would be 100,000
    # objects or 10 MB: the bounds are well under that.
    assert objs1 - objs0 < 2000, (objs0, objs1)
    assert rss1 - rss0 < 8 * 1024 * SLOW, (rss0, rss1)
