"""The Python echo server that scripts/bench-python.sh measures
(bench/peers/zinx_py_echo.py, written with the port's API) frames
correctly, so its numbers are those of a correct server: a frame cut in
its header or payload, several frames in one read, an empty payload, and
a length above MaxPacketSize, which closes the connection
(bench/peers/check_echo_peer.py), in both layouts, with handlers on the
I/O thread (WorkerPoolSize 0) and on workers."""

import os
import subprocess
import sys

import pytest

from conftest import HERE, SLOW

PEERS = os.path.join(HERE, "..", "..", "bench", "peers")


@pytest.mark.parametrize("workers", [0, 4])
@pytest.mark.parametrize("fmt", ["tlv", "ltv_le"])
def test_zinx_py_echo_frames(fmt, workers):
    # The child inherits PYTHONPATH (and a sanitizer build's LD_PRELOAD);
    # it reads the test folder's conf/zinx.json, the options go on top.
    cmd = [sys.executable, os.path.join(PEERS, "check_echo_peer.py"),
           "--format", fmt, "--max-packet", "4096", "--",
           sys.executable, os.path.join(PEERS, "zinx_py_echo.py"),
           "--workers", str(workers)]
    run = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=60 * SLOW)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "ok (%s)" % fmt
