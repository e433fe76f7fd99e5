"""Harness of the MMO demo's Python tests (compat.py, hostile.py).

A client of Zinx's mmo_game protocol written only from the facts in issue 12,
in another language than the server, plus an oracle of what every player
must receive. Nothing here reads the server's sources: the messages come
from compat_msg.proto beside this file, the world's grid from the issue.

  Frames      ltv_le: u32 LE payload length, u32 LE message ID, payload.
  IDs         1 SyncPID (S->C), 2 Talk (C->S), 3 Position (C->S),
              200 BroadCast, 201 SyncPID (left your view), 202 SyncPlayers.
  BroadCast   Tp 1 chat (Content), 2 appear (P), 3 action, 4 moved (P).
  World       X 85..410 in 10 columns, Z 75..400 in 20 rows; a cell is
              (int(x) - 85) // 32, (int(z) - 75) // 16; a player sees the
              players of its nine cells.

Each test step says, for every connected player, which events it must get
and which it may get; the step waits for the required ones (a timeout means
"missing") and then for a quiet period, and fails on anything else
("must not arrive"). Late frames are not lost: they stay in the inbox and
fail the next step.
"""

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# Exit codes ctest reads: 77 is the test's SKIP_RETURN_CODE.
EXIT_SKIP = 77

MSG_SYNC_PID = 1
MSG_TALK = 2
MSG_MOVE = 3
MSG_BROADCAST = 200
MSG_LEAVE = 201
MSG_SYNC_PLAYERS = 202

TP_CHAT = 1
TP_APPEAR = 2
TP_ACTION = 3
TP_MOVED = 4

WORLD_MIN_X, WORLD_MAX_X, WORLD_COLS = 85, 410, 10
WORLD_MIN_Z, WORLD_MAX_Z, WORLD_ROWS = 75, 400, 20
CELL_W = (WORLD_MAX_X - WORLD_MIN_X) // WORLD_COLS  # 32
CELL_H = (WORLD_MAX_Z - WORLD_MIN_Z) // WORLD_ROWS  # 16

# Where Zinx places a new player: X 160 + rand(50), Z 134 + rand(50).
SPAWN_X = (160, 209)
SPAWN_Z = (134, 183)

ARRIVE_TIMEOUT = 10.0  # "must arrive": generous for the sanitizer builds
QUIET = 0.3  # "must not arrive": nothing more within this after a step


class Failure(Exception):
    """A check that failed: its message says what was expected and seen."""


def log(*args):
    print(*args, flush=True)


# ---------------------------------------------------------------- setup ----


def in_ci():
    return os.environ.get("CI", "").lower() == "true"


def missing_tool(what):
    """A missing test tool skips the test, except under CI=true."""
    if in_ci():
        log(f"FAIL: {what} is missing, and CI=true forbids skipping "
            "(bash scripts/install-deps.sh test)")
        sys.exit(1)
    log(f"SKIP: {what} is missing (apt-get install protobuf-compiler "
        "python3-protobuf)")
    sys.exit(EXIT_SKIP)


def load_messages(workdir):
    """Compiles compat_msg.proto with protoc into workdir and imports it."""
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        missing_tool("python3-protobuf (google.protobuf for /usr/bin/python3)")
    protoc = shutil.which("protoc")
    if protoc is None:
        missing_tool("protoc (protobuf-compiler)")
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([protoc, f"--python_out={workdir}", f"--proto_path={here}",
                    "compat_msg.proto"], check=True)
    sys.path.insert(0, workdir)
    import compat_msg_pb2
    return compat_msg_pb2


pb = None  # the generated module, set by main()


def f32(v):
    """v as the float32 the wire carries."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def pos(x, z, y=0.0, v=0.0):
    """A position (x, y, z, v) as float32 values."""
    return (f32(x), f32(y), f32(z), f32(v))


def cell_of(p):
    """The (column, row) of a position inside the world, as Zinx computes."""
    return ((int(p[0]) - WORLD_MIN_X) // CELL_W,
            (int(p[2]) - WORLD_MIN_Z) // CELL_H)


def near(p, q):
    """Whether positions p and q are in each other's nine cells."""
    (c1, r1), (c2, r2) = cell_of(p), cell_of(q)
    return abs(c1 - c2) <= 1 and abs(r1 - r2) <= 1


# --------------------------------------------------------------- frames ----


def frame(msg_id, payload=b""):
    return struct.pack("<II", len(payload), msg_id) + payload


def encode_position(p):
    m = pb.Position()
    m.X, m.Y, m.Z, m.V = p
    return m.SerializeToString()


def encode_talk(text):
    m = pb.Talk()
    m.Content = text
    return m.SerializeToString()


def _strict_parse(cls, payload, what):
    m = cls()
    try:
        m.ParseFromString(payload)
    except Exception as e:  # DecodeError, or the cpp backend's own
        raise Failure(f"{what}: payload {payload.hex()} is not a valid "
                      f"{cls.__name__}: {e}")
    # A field this client does not know means a wrong field number.
    unknown = getattr(m, "UnknownFields", None)
    if unknown is not None and len(unknown()) > 0:
        raise Failure(f"{what}: unknown fields in {cls.__name__} "
                      f"{payload.hex()}")
    return m


def _position_tuple(p):
    return (p.X, p.Y, p.Z, p.V)


def decode(msg_id, payload):
    """A received frame as a comparable event tuple:
    (1, pid) | (201, pid) | (200, pid, tp, data) | (202, frozenset)."""
    what = f"frame id {msg_id}"
    if msg_id in (MSG_SYNC_PID, MSG_LEAVE):
        m = _strict_parse(pb.SyncPID, payload, what)
        return (msg_id, m.PID)
    if msg_id == MSG_BROADCAST:
        m = _strict_parse(pb.BroadCast, payload, what)
        kind = m.WhichOneof("Data")
        if kind == "P":
            data = _position_tuple(m.P)
        elif kind == "Content":
            data = m.Content
        elif kind == "ActionData":
            data = ("action", m.ActionData)
        else:
            data = None
        return (MSG_BROADCAST, m.PID, m.Tp, data)
    if msg_id == MSG_SYNC_PLAYERS:
        m = _strict_parse(pb.SyncPlayers, payload, what)
        players = [(pl.PID, _position_tuple(pl.P)) for pl in m.ps]
        if len(players) != len({pid for pid, _ in players}):
            raise Failure(f"202 SyncPlayers lists a player twice: {players}")
        return (MSG_SYNC_PLAYERS, frozenset(players))
    raise Failure(f"unexpected message ID {msg_id} from the server "
                  f"(payload {payload.hex()})")


def ev_chat(pid, text):
    return (MSG_BROADCAST, pid, TP_CHAT, text)


def ev_appear(pid, p):
    return (MSG_BROADCAST, pid, TP_APPEAR, p)


def ev_moved(pid, p):
    return (MSG_BROADCAST, pid, TP_MOVED, p)


def ev_leave(pid):
    return (MSG_LEAVE, pid)


def describe(ev):
    names = {TP_CHAT: "chat", TP_APPEAR: "appear", TP_ACTION: "action",
             TP_MOVED: "moved"}
    if ev[0] == MSG_BROADCAST:
        return f"200 Tp {ev[2]} ({names.get(ev[2], '?')}) PID {ev[1]} {ev[3]!r}"
    if ev[0] == MSG_SYNC_PLAYERS:
        return f"202 SyncPlayers {sorted(ev[1])}"
    return f"{ev[0]} SyncPID {ev[1]}"


# --------------------------------------------------------------- server ----


def with_parent(argv):
    """argv run so that it is killed when the test dies, however it dies
    (a ctest timeout too): util-linux's setpriv sets the parent-death
    signal and execs it, so no peer outlives the test."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] + argv if setpriv else argv


class Server:
    """zinx-mmo started on free ports with a zinx.json of our own; extra:
    more keys of that zinx.json (a cluster node's)."""

    def __init__(self, exe, workdir, extra=None):
        self.workdir = workdir
        conf = os.path.join(workdir, "zinx.json")
        keys = {"Name": "mmo-compat", "Host": "127.0.0.1", "TCPPort": 0,
                "WsPort": 0, "Mode": "", "WsPath": "/ws",
                "PacketFormat": "ltv_le"}
        keys.update(extra or {})
        with open(conf, "w") as f:
            f.write(json.dumps(keys) + "\n")
        env = dict(os.environ, ZINX_CONFIG_FILE_PATH=conf)
        self.stderr_path = os.path.join(workdir, "server.stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(with_parent([exe]), cwd=workdir, env=env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=self.stderr)
        self.lines = []
        self.cond = threading.Condition()
        # Drained by a thread so a chatty server never blocks on the pipe.
        self.reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.reader.start()
        self.port = self._wait_listening()

    def _read_stdout(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of output
            self.cond.notify_all()

    def _wait_listening(self):
        deadline = time.monotonic() + 30
        with self.cond:
            while True:
                for line in self.lines:
                    if line is None:
                        raise Failure("zinx-mmo exited before listening: "
                                      f"{self.tail()}")
                    if line.startswith("listening on "):
                        hostport = line[len("listening on "):].strip()
                        host, _, port = hostport.rpartition(":")
                        if host != "127.0.0.1" or not port.isdigit():
                            raise Failure(f"bad listening line {line!r}")
                        return int(port)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure("no 'listening on HOST:PORT' within 30 s")
                self.cond.wait(left)

    def wait_line(self, line, timeout=30):
        """Waits until the server printed this exact line."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while line not in self.lines:
                if None in self.lines:
                    raise Failure(f"zinx-mmo exited before printing {line!r}"
                                  f": {self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"zinx-mmo did not print {line!r} within "
                                  f"{timeout} s: {self.tail()}")
                self.cond.wait(left)

    def alive(self):
        return self.proc.poll() is None

    def tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                err = f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            err = ""
        out = "\n".join(line for line in self.lines if line is not None)
        return f"stdout:\n{out[-2000:]}\nstderr (tail):\n{err}"

    def stop(self):
        """SIGTERM; returns the counters of its `mmo:` line. It must exit 0
        within 30 s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("zinx-mmo did not exit within 30 s of SIGTERM")
        self.reader.join(timeout=5)
        if rc != 0:
            raise Failure(f"zinx-mmo exited {rc} after SIGTERM\n{self.tail()}")
        stats = [line for line in self.lines
                 if line is not None and line.startswith("mmo: ")]
        if len(stats) != 1:
            raise Failure(f"expected one 'mmo: ...' line, got {stats}")
        counters = {}
        for item in stats[0][len("mmo: "):].split():
            key, _, value = item.partition("=")
            if not value.isdigit():
                raise Failure(f"bad counter {item!r} in {stats[0]!r}")
            counters[key] = int(value)
        log(f"server: {stats[0]}")
        return counters

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def check_counters(got, want):
    """Each counter in want must be in got with that value (an int) or, for
    an expectation the issue leaves open, one of a tuple of values."""
    bad = []
    for key, value in want.items():
        ok = got.get(key) in value if isinstance(value, tuple) else \
            got.get(key) == value
        if not ok:
            bad.append(f"{key}={got.get(key)} (expected {value})")
    if bad:
        raise Failure("counters: " + ", ".join(bad))


# --------------------------------------------------------------- client ----


class Player:
    """One TCP connection speaking ltv_le; frames land in self.inbox."""

    def __init__(self, port, name):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.inbox = []
        self.frames = 0  # every frame received
        self.eof = False
        self.pid = None
        self.pos = None

    def __repr__(self):
        return f"{self.name}(PID {self.pid})"

    def send_raw(self, data):
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def send(self, msg_id, payload=b""):
        self.send_raw(frame(msg_id, payload))

    def read_ready(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return
        self.buf += data
        while len(self.buf) >= 8:
            length, msg_id = struct.unpack_from("<II", self.buf)
            if length > 1 << 20:
                raise Failure(f"{self}: frame of {length} bytes")
            if len(self.buf) < 8 + length:
                break
            payload = bytes(self.buf[8:8 + length])
            del self.buf[:8 + length]
            self.inbox.append(decode(msg_id, payload))
            self.frames += 1

    def close(self):
        self.sock.close()


class World:
    """The players this test connected, and where the server must think
    they are."""

    def __init__(self, port):
        self.port = port
        self.players = []
        self.everyone = []  # every player ever connected
        self.joined = 0
        self.left = 0
        self.moves = 0
        self.chats = 0
        self.arrivals = []  # (name, the frames it got on arrival)

    def others(self, p):
        return [q for q in self.players if q is not p]

    def pump(self, timeout):
        """Reads what arrives within timeout into the players' inboxes."""
        socks = {q.sock: q for q in self.players if not q.eof}
        if not socks:
            time.sleep(timeout)
            return
        ready, _, _ = select.select(list(socks), [], [], timeout)
        for s in ready:
            socks[s].read_ready()

    # -- one step: everything each player must and may receive -----------

    def expect(self, what, required, optional=None, timeout=ARRIVE_TIMEOUT,
               until=None):
        """required/optional: {player: [events]}. Players not named must
        receive nothing. Waits for the required events (and until(), when
        given), then QUIET more. Consumes the inboxes; returns what each
        player got, in order."""
        optional = optional or {}
        deadline = time.monotonic() + timeout

        def satisfied():
            if until is not None and not until():
                return False
            for p, evs in required.items():
                left = list(p.inbox)
                for ev in evs:
                    if ev not in left:
                        return False
                    left.remove(ev)
            return True

        while not satisfied() and time.monotonic() < deadline:
            self.pump(min(0.05, max(0.0, deadline - time.monotonic())))
        quiet_end = time.monotonic() + QUIET
        while time.monotonic() < quiet_end:
            self.pump(quiet_end - time.monotonic())
        problems = []
        received = {}
        for p in self.players:
            received[p] = list(p.inbox)
            got, p.inbox = p.inbox, []
            missing = []
            for ev in required.get(p, []):
                if ev in got:
                    got.remove(ev)
                else:
                    missing.append(ev)
            for ev in optional.get(p, []):
                if ev in got:
                    got.remove(ev)
            for ev in missing:
                problems.append(f"{p} did not get {describe(ev)}")
            for ev in got:
                problems.append(f"{p} got {describe(ev)}, not expected")
            if p.eof:
                problems.append(f"{p}: the server closed the connection")
        if problems:
            raise Failure(f"{what}:\n  " + "\n  ".join(problems))
        log(f"ok: {what}")
        return received

    # -- actions, each checked against the rules --------------------

    def arrive(self, name):
        """Connects a player and checks Zinx's arrival: 1 SyncPID, 200 Tp 2
        of itself at its spawn, 202 SyncPlayers of its nine cells; and the
        players of those cells get 200 Tp 2 of it, nobody else anything."""
        p = Player(self.port, name)
        self.players.append(p)
        self.everyone.append(p)
        deadline = time.monotonic() + ARRIVE_TIMEOUT
        while len(p.inbox) < 2 and time.monotonic() < deadline and not p.eof:
            self.pump(0.05)
        if len(p.inbox) < 2:
            raise Failure(f"{name}: arrival: got only {p.inbox} within "
                          f"{ARRIVE_TIMEOUT} s")
        first, second = p.inbox[0], p.inbox[1]
        if first[0] != MSG_SYNC_PID or first[1] <= 0:
            raise Failure(f"{name}: arrival: first frame {describe(first)}, "
                          "expected 1 SyncPID with PID > 0")
        p.pid = first[1]
        if any(q.pid == p.pid for q in self.others(p)):
            raise Failure(f"{name}: PID {p.pid} is already in use")
        if second[:3] != (MSG_BROADCAST, p.pid, TP_APPEAR):
            raise Failure(f"{name}: arrival: second frame {describe(second)}, "
                          f"expected 200 Tp 2 of PID {p.pid}")
        x, y, z, v = second[3]
        if not (SPAWN_X[0] <= x <= SPAWN_X[1] and SPAWN_Z[0] <= z <= SPAWN_Z[1]
                and y == 0 and v == 0 and x == int(x) and z == int(z)):
            raise Failure(f"{name}: spawned at {second[3]}, expected integers "
                          f"X {SPAWN_X}, Z {SPAWN_Z}, Y 0, V 0")
        p.pos = second[3]
        self.joined += 1
        neighbours = [q for q in self.others(p) if near(q.pos, p.pos)]
        sync = (MSG_SYNC_PLAYERS, frozenset((q.pid, q.pos) for q in neighbours))
        sync_self = (MSG_SYNC_PLAYERS, sync[1] | {(p.pid, p.pos)})
        # After the two fixed frames: 202, and nothing else. Zinx's own
        # server lists the newcomer in its 202 and sends it its 200 Tp 2 a
        # second time (it is among "the players around it"): both are
        # allowed, nothing else is.
        got = self.expect(f"{name} (PID {p.pid}) arrives at {p.pos[0]:.0f},"
                    f"{p.pos[2]:.0f} cell {cell_of(p.pos)}; "
                    f"neighbours {neighbours}",
                    required={q: [ev_appear(p.pid, p.pos)]
                              for q in neighbours},
                    optional={p: [first, second, second, sync, sync_self]},
                    until=lambda: any(ev[0] == MSG_SYNC_PLAYERS
                                      for ev in p.inbox))
        seq = got[p]
        tail = seq[2:]
        if tail and tail[0] == second:  # Zinx's second 200 Tp 2 of itself
            tail = tail[1:]
        if tail not in ([sync], [sync_self]):
            raise Failure(f"{name}: arrival sequence "
                          f"{[describe(e) for e in seq]}: expected 1, 200 "
                          f"Tp 2 of itself, 202 {describe(sync)}")
        self.arrivals.append((p.name, [describe(e) for e in seq]))
        return p, neighbours

    def move(self, p, to, what="", payload=None, split=False):
        """p moves to `to`; checks who sees what (see the issue):
        players near both the old and new cell get 200 Tp 4; those near
        only the old one get 201 of p and p gets 201 of them; those near
        only the new one get 200 Tp 2 of p and p gets 200 Tp 2 of them.
        payload: the Position's bytes when not the usual encoding; split:
        send the frame a byte at a time."""
        to = tuple(f32(c) for c in to)
        data = frame(MSG_MOVE, encode_position(to) if payload is None
                     else payload)
        if split:
            for i in range(len(data)):
                p.send_raw(data[i:i + 1])
                time.sleep(0.002)
        else:
            p.send_raw(data)
        self.moves += 1
        required = {q: [] for q in self.players}
        optional = {p: [ev_moved(p.pid, to)]}  # Zinx sends it to p too
        kinds = {"both": [], "old": [], "new": []}
        for q in self.others(p):
            was, now = near(q.pos, p.pos), near(q.pos, to)
            if was and now:
                required[q].append(ev_moved(p.pid, to))
                kinds["both"].append(q)
            elif was:
                required[q].append(ev_leave(p.pid))
                required[p].append(ev_leave(q.pid))
                kinds["old"].append(q)
            elif now:
                required[q].append(ev_appear(p.pid, to))
                # Zinx then broadcasts the move to the new nine cells too.
                optional[q] = [ev_moved(p.pid, to)]
                required[p].append(ev_appear(q.pid, q.pos))
                kinds["new"].append(q)
        old = p.pos
        p.pos = to
        self.expect(f"{p} moves {cell_of(old)} -> {cell_of(to)} "
                    f"({to[0]},{to[2]}) {what}: moved to {kinds['both']}, "
                    f"disappear {kinds['old']}, appear {kinds['new']}",
                    required, optional)
        return kinds

    def talk(self, p, text, what=""):
        """A chat reaches every other player as 200 Tp 1."""
        p.send(MSG_TALK, encode_talk(text))
        self.chats += 1
        self.expect(f"{p} says {text[:40]!r}{'...' if len(text) > 40 else ''}"
                    f" {what}",
                    {q: [ev_chat(p.pid, text)] for q in self.others(p)},
                    {p: [ev_chat(p.pid, text)]})

    def leave(self, p):
        """p disconnects; its nine cells' players get 201 with its PID."""
        self.players.remove(p)
        p.close()
        self.left += 1
        neighbours = [q for q in self.players if near(q.pos, p.pos)]
        self.expect(f"{p} leaves from cell {cell_of(p.pos)}: 201 to "
                    f"{neighbours}", {q: [ev_leave(p.pid)] for q in neighbours})
        return neighbours

    def closed_by_server(self, p, what):
        """The server must close p's connection (for what p just sent),
        without a frame before it; then p has left like any player."""
        deadline = time.monotonic() + ARRIVE_TIMEOUT
        while not p.eof and time.monotonic() < deadline:
            self.pump(0.05)
        if not p.eof:
            raise Failure(f"{p}: {what}: the connection is still open "
                          f"after {ARRIVE_TIMEOUT} s")
        if p.inbox:
            raise Failure(f"{p}: {what}: got {[describe(e) for e in p.inbox]}"
                          " before the close")
        self.players.remove(p)
        p.close()
        self.left += 1
        neighbours = [q for q in self.players if near(q.pos, p.pos)]
        self.expect(f"{p} closed by the server ({what}): 201 to "
                    f"{neighbours}", {q: [ev_leave(p.pid)] for q in neighbours})

    def leave_all(self):
        while self.players:
            self.leave(self.players[0])

    def counters(self):
        """What the server's `mmo:` line must say after this test's
        actions; broadcasts is every frame sent to a player."""
        return {"joined": self.joined, "left": self.left,
                "moves": self.moves, "chats": self.chats,
                "broadcasts": sum(p.frames for p in self.everyone)}


def play(exe, workdir, body):
    """Starts zinx-mmo and a World on it, runs body(server, world), which
    returns the refusal counts it expects, then checks the server is up,
    stops it and compares its every counter. Returns the world. On a
    failure the server's last output is logged; the server never
    outlives the call."""
    server = Server(exe, workdir)
    try:
        w = World(server.port)
        refused = body(server, w)
        if not server.alive():
            raise Failure("zinx-mmo died")
        counters = server.stop()
        want = w.counters()
        want.update(refused)
        check_counters(counters, want)
        return w
    except Failure:
        log(server.tail())
        raise
    finally:
        server.kill()


def run(main):
    """Runs main(server_exe, workdir): sets up the messages and a working
    folder, reports a Failure as the test's failure (exit 1)."""
    global pb
    if len(sys.argv) != 2:
        log(f"usage: {sys.argv[0]} PATH/TO/zinx-mmo")
        sys.exit(2)
    exe = os.path.abspath(sys.argv[1])
    workdir = tempfile.mkdtemp(prefix="mmo-test-")
    try:
        pb = load_messages(workdir)
        main(exe, workdir)
    except Failure as e:
        log(f"FAIL: {e}")
        sys.exit(1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log("PASS")

