#!/usr/bin/python3
"""The MMO demo on two nodes behind HAProxy (issue 13, part 3).

    /usr/bin/python3 cluster.py PATH/TO/zinx-mmo

Starts nats-server, two zinx-mmo nodes of one cluster (ClusterNode 1 and
2, PROXY protocol v2 from 127.0.0.1) and HAProxy in front of them (mode
tcp, balance roundrobin, send-proxy-v2), all on 127.0.0.1 and free ports,
then connects players through HAProxy only, and checks, message by
message and player by player with the oracle of mmo_harness.py, what the
README promises ("On two nodes"):
  - roundrobin puts players on both nodes; each player's ID lies in its
    node's range (node * 10^6 + 1, + 2, ...), unique in the cluster;
  - each node runs its own world: an arrival, a move (even onto another
    node's player's very position), a move across cells and a departure
    are seen by the players of the same node's nine cells, exactly as on
    one server, and by no player of the other node;
  - world chat is cluster-wide: a chat from a player on node A reaches
    every other player on A and every player on B, word for word (a 256
    byte chat of multi-byte UTF-8 too), and the other way round;
  - after SIGTERM each node exits 0 and its counters equal what its
    players did: joined, left, moves, chats, the frames they received,
    chats handed to the cluster, chats received from the other node.
Every peer is stopped on every path. Without nats-server or haproxy the
test skips, except under CI=true, where it fails.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import mmo_harness as h  # noqa: E402
from mmo_harness import Failure, pos  # noqa: E402

PID_NODE_STRIDE = 1000000  # protocol.h: node N's IDs are N * 10^6 + n
PLAYERS_PER_NODE = 3
F_CORNER = pos(390.5, 390.25)  # far from Zinx's spawn area


def node_of(p):
    return p.pid // PID_NODE_STRIDE


def find_tool(name, paths):
    """A peer's program: Debian puts these in /usr/sbin, which a user's
    PATH may lack."""
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found is None:
        if h.in_ci():
            h.log(f"FAIL: {name} is missing, and CI=true forbids skipping "
                  "(bash scripts/install-deps.sh test)")
            sys.exit(1)
        h.log(f"SKIP: {name} is missing (apt-get install {name})")
        sys.exit(h.EXIT_SKIP)
    return found


def free_port():
    """A loopback port free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=20):
    """Waits until something listens on port (proc must stay alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure(f"{what} does not listen on 127.0.0.1:{port} after "
                  f"{timeout} s")


class Peer:
    """A peer program (nats-server, haproxy) with its output in a file."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(h.with_parent(argv), cwd=workdir,
                                         stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out)

    def tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_nats(workdir):
    exe = find_tool("nats-server", ["/usr/sbin/nats-server",
                                    "/usr/bin/nats-server"])
    port = free_port()
    nats = Peer("nats-server", [exe, "-a", "127.0.0.1", "-p", str(port)],
                workdir)
    wait_port(port, nats.proc, "nats-server")
    return nats, port


def start_haproxy(workdir, node_ports):
    """HAProxy in front of the nodes' player ports: roundrobin,
    send-proxy-v2. A second frontend answers only HAProxy itself, so the
    test can wait for it without making a player."""
    exe = find_tool("haproxy", ["/usr/sbin/haproxy"])
    port, ready = free_port(), free_port()
    servers = "".join(f"    server node{i + 1} 127.0.0.1:{p} send-proxy-v2\n"
                      for i, p in enumerate(node_ports))
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n"
                "    maxconn 256\n"
                "defaults\n"
                "    mode tcp\n"
                "    timeout connect 5s\n"
                "    timeout client 60s\n"
                "    timeout server 60s\n"
                "frontend players\n"
                f"    bind 127.0.0.1:{port}\n"
                "    default_backend nodes\n"
                "backend nodes\n"
                "    balance roundrobin\n"
                f"{servers}"
                "frontend ready\n"
                "    mode http\n"
                f"    bind 127.0.0.1:{ready}\n"
                "    monitor-uri /ready\n")
    proxy = Peer("haproxy", [exe, "-db", "-f", cfg], workdir)
    wait_port(ready, proxy.proc, "haproxy")
    return proxy, port


class ClusterWorld(h.World):
    """The players of both nodes, reached through HAProxy. A player's
    world is its node's: the oracle's "others" (who may see it arrive,
    move and leave) are the players of its node; a chat goes to all."""

    def others(self, p):
        return [q for q in self.players
                if q is not p and node_of(q) == node_of(p)]

    def arrive(self, name):
        p, neighbours = super().arrive(name)
        node = node_of(p)
        if node not in (1, 2):
            raise Failure(f"{p}: PID {p.pid} is in no node's range "
                          f"(node * {PID_NODE_STRIDE} + n, nodes 1 and 2)")
        if any(q.pid == p.pid for q in self.everyone if q is not p):
            raise Failure(f"{p}: PID {p.pid} is already in the cluster")
        return p, neighbours

    def talk(self, p, text, what=""):
        """A chat reaches every other player of the cluster as 200 Tp 1."""
        p.send(h.MSG_TALK, h.encode_talk(text))
        self.chats += 1
        p.chats = getattr(p, "chats", 0) + 1
        self.expect(f"{p} on node {node_of(p)} says "
                    f"{text[:40]!r}{'...' if len(text) > 40 else ''} {what}",
                    {q: [h.ev_chat(p.pid, text)] for q in self.players
                     if q is not p},
                    {p: [h.ev_chat(p.pid, text)]})

    def leave(self, p):
        """p disconnects; its node's players of its nine cells get 201."""
        self.players.remove(p)
        p.close()
        self.left += 1
        neighbours = [q for q in self.others(p) if h.near(q.pos, p.pos)]
        self.expect(f"{p} leaves node {node_of(p)} from cell "
                    f"{h.cell_of(p.pos)}: 201 to {neighbours}",
                    {q: [h.ev_leave(p.pid)] for q in neighbours})

    def move(self, p, to, what=""):
        kinds = super().move(p, to, what)
        p.moves = getattr(p, "moves", 0) + 1
        return kinds

    def node_counters(self, node, other):
        """What node's `mmo:` line must say at the end."""
        mine = [p for p in self.everyone if node_of(p) == node]
        theirs = [p for p in self.everyone if node_of(p) == other]
        chats = sum(getattr(p, "chats", 0) for p in mine)
        return {"joined": len(mine), "left": len(mine),
                "moves": sum(getattr(p, "moves", 0) for p in mine),
                "chats": chats, "chats_out": chats, "chats_out_failed": 0,
                "chats_in": sum(getattr(p, "chats", 0) for p in theirs),
                "refused_chats_in": 0,
                "broadcasts": sum(p.frames for p in mine),
                "refused_malformed": 0, "refused_position": 0,
                "refused_chat_size": 0, "refused_chat_rate": 0}


def arrive_on_both(w):
    """Players through HAProxy until each node has PLAYERS_PER_NODE;
    roundrobin alternates, so a few more than twice that must do."""
    on = {1: [], 2: []}
    for i in range(4 * PLAYERS_PER_NODE):
        if min(len(v) for v in on.values()) >= PLAYERS_PER_NODE:
            break
        p, _ = w.arrive(f"P{i + 1}")
        on[node_of(p)].append(p)
    for node, players in on.items():
        if len(players) < PLAYERS_PER_NODE:
            raise Failure(f"roundrobin put {len(players)} players on node "
                          f"{node} out of {sum(map(len, on.values()))}")
        # Each node hands out its own range in order: N * 10^6 + 1, + 2...
        want = [node * PID_NODE_STRIDE + k + 1 for k in range(len(players))]
        if [p.pid for p in players] != want:
            raise Failure(f"node {node}'s PIDs {[p.pid for p in players]}, "
                          f"expected {want}")
    return on[1], on[2]


def scenario(w):
    a, b = arrive_on_both(w)
    # Onto the very position of the other node's player: in a shared
    # world its players would see it; here only its own node's do.
    w.move(a[0], b[0].pos, "(onto node 2's player B1)")
    w.move(b[1], a[1].pos, "(onto node 1's player A2)")
    # Across cells: out of everyone's view and back, 201 and 200 Tp 2
    # with the same node's players only.
    w.move(a[2], F_CORNER, "(far away)")
    w.move(a[2], b[2].pos, "(back, onto node 2's player B3)")
    w.move(b[0], F_CORNER, "(far away)")
    w.move(b[0], a[0].pos, "(back, onto node 1's player A1)")
    # World chat both ways, to every player of both nodes.
    w.talk(a[0], "hello from node 1")
    w.talk(b[0], "hello from node 2")
    w.talk(b[2], "\u00e9" * 128, "(256 bytes of 2-byte UTF-8)")
    w.talk(a[1], "\u4e16\u754c" * 42 + "ab", "(254 + 2 bytes, 3-byte UTF-8)")
    # Departures: only the same node's neighbours hear of them.
    w.leave(a[1])
    w.leave(b[1])
    w.talk(a[2], "still here")
    w.leave_all()


def run(exe, workdir):
    peers, nodes = [], []
    try:
        nats, nats_port = start_nats(workdir)
        peers.append(nats)
        for n in (1, 2):
            d = os.path.join(workdir, f"node{n}")
            os.mkdir(d)
            nodes.append(h.Server(exe, d, {
                "Name": f"mmo-node{n}", "ClusterName": "mmo-test",
                "ClusterNatsUrl": f"nats://127.0.0.1:{nats_port}",
                "ClusterNode": n, "ClusterHeartbeatMs": 100,
                "ProxyProtocol": "v2", "ProxyProtocolFrom": "127.0.0.1"}))
        # Chats are relayed only to nodes that are up: wait for each to
        # see the other.
        nodes[0].wait_line("cluster: node 2 up")
        nodes[1].wait_line("cluster: node 1 up")
        proxy, port = start_haproxy(workdir, [s.port for s in nodes])
        peers.append(proxy)
        w = ClusterWorld(port)
        scenario(w)
        for i, s in enumerate(nodes):
            if not s.alive():
                raise Failure(f"node {i + 1} died")
        for i, s in enumerate(nodes):
            n = i + 1
            got = s.stop()
            h.check_counters(got, w.node_counters(n, 3 - n))
            h.log(f"ok: node {n}'s counters")
    except Failure:
        for i, s in enumerate(nodes):
            h.log(f"---- node {i + 1}\n{s.tail()}")
        for p in peers:
            h.log(f"---- {p.name}\n{p.tail()}")
        raise
    finally:
        for s in nodes:
            s.kill()
        for p in reversed(peers):
            p.stop()


if __name__ == "__main__":
    h.run(run)
