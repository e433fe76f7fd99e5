"""Shared helpers of the Python binding's tests (tests/python).

ctest runs each test_*.py with PYTHONPATH = the build's bindings/python
(the CMake-built _zinx) then the source bindings/python (ziface, znet,
zconf). Every test runs in a fresh temporary folder holding its own
conf/zinx.json, so the servers it makes listen on 127.0.0.1 and a port
the kernel picks (TCPPort 0) unless the test says otherwise.
"""

import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# Sanitizer builds run several times slower: every wait scales.
SLOW = 4.0 if os.environ.get("ZINX_PY_SANITIZER") else 1.0
TIMEOUT = 10.0 * SLOW


def write_config(folder, **keys):
    """Writes folder/conf/zinx.json with test defaults and keys on top."""
    cfg = {"Name": "pytest", "Host": "127.0.0.1", "TCPPort": 0,
           "WorkerPoolSize": 4, "PacketFormat": "tlv"}
    cfg.update(keys)
    os.makedirs(os.path.join(folder, "conf"), exist_ok=True)
    with open(os.path.join(folder, "conf", "zinx.json"), "w") as f:
        json.dump(cfg, f)
    return cfg


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """Each test in its own folder with a conf/zinx.json; GlobalObject
    forgets what an earlier test read or overrode."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZINX_CONFIG_FILE_PATH", raising=False)
    write_config(str(tmp_path))
    from zconf import GlobalObject
    for key in GlobalObject.Overrides():
        delattr(GlobalObject, key)
    GlobalObject._Invalidate()
    yield tmp_path
    for key in GlobalObject.Overrides():
        delattr(GlobalObject, key)
    GlobalObject._Invalidate()


def free_port():
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FrameClient:
    """A plain-socket Zinx peer: frames in one PacketFormat, blocking
    reads with a timeout (a missing reply fails the test, never hangs)."""

    def __init__(self, port, packet_format="tlv", host="127.0.0.1",
                 timeout=TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.big_endian = packet_format == "tlv"
        self.buf = b""

    def frame(self, msg_id, data):
        if self.big_endian:
            return struct.pack(">II", msg_id, len(data)) + data
        return struct.pack("<II", len(data), msg_id) + data

    def send(self, msg_id, data):
        self.sock.sendall(self.frame(msg_id, data))

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed with %d of %d bytes buffered"
                               % (len(self.buf), n))
            self.buf += chunk

    def recv(self):
        """The next frame as (msg_id, data)."""
        self._fill(8)
        if self.big_endian:
            msg_id, length = struct.unpack(">II", self.buf[:8])
        else:
            length, msg_id = struct.unpack("<II", self.buf[:8])
        self._fill(8 + length)
        data = self.buf[8:8 + length]
        self.buf = self.buf[8 + length:]
        return msg_id, data

    def expect_eof(self):
        """Waits for the server to close (fails on more data)."""
        chunk = self.sock.recv(65536)
        assert chunk == b"" and self.buf == b"", (
            "expected the end of the stream, got %r" % (self.buf + chunk))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_for(predicate, timeout=TIMEOUT, what="a condition"):
    """Polls predicate until true; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError("timed out waiting for %s" % what)


class Program:
    """A Python program run as a subprocess in a folder, its stdout and
    stderr read line by line on threads (so neither pipe fills up)."""

    def __init__(self, script, cwd, args=(), env=None, python=None,
                 base_env=None):
        full_env = dict(os.environ if base_env is None else base_env)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [python or sys.executable, script] + list(args), cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.out = []
        self.err = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout,
                                                      self.out, True)),
            threading.Thread(target=self._read, args=(self.proc.stderr,
                                                      self.err, False)),
        ]
        for t in self._readers:
            t.daemon = True
            t.start()

    def _read(self, pipe, keep, to_queue):
        for raw in iter(pipe.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            keep.append(line)
            if to_queue:
                self.lines.put(line)

    def wait_line(self, predicate, timeout=TIMEOUT):
        """The next stdout line for which predicate holds (lines before
        it are consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "no such line; stdout: %r; stderr: %r"
                    % (self.out, self.err))
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(
                        "program exited (%s); stdout: %r; stderr: %r"
                        % (self.proc.returncode, self.out, self.err))
                continue
            if predicate(line):
                return line

    def connect(self, port, packet_format="tlv", timeout=TIMEOUT):
        """A FrameClient connected to the program's port, retrying until
        it listens (no probe connection: each one the program sees is a
        client of the test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    "program exited (%s) before listening; stderr: %r"
                    % (self.proc.returncode, self.err))
            try:
                return FrameClient(port, packet_format)
            except ConnectionRefusedError:
                time.sleep(0.02)
        raise AssertionError("nothing listens on %d; stderr: %r"
                             % (port, self.err))

    def wait_exit(self, timeout=TIMEOUT):
        """The exit code; the program is killed (and the test fails) when
        it does not exit in time."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("program did not exit; stdout: %r; "
                                 "stderr: %r" % (self.out, self.err))
        for t in self._readers:
            t.join(timeout)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def make_server():
    """make_server(config=None) -> a NewServer(config); every one made is
    stopped when the test ends, whatever happened."""
    from znet.server import NewServer
    made = []

    def make(config=None):
        server = NewServer(config)
        made.append(server)
        return server

    yield make
    for server in made:
        server.Stop()
