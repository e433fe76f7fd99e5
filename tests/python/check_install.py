"""The install path of `make python`, in CI: pip builds the package from a
copy of bindings/python against this build's libzinx.a into a fresh
virtual environment, with no index and no build isolation (Debian's
setuptools and wheel), and the port's hook demo then runs with that
environment's interpreter alone (no PYTHONPATH), answering a client.

Registered for the plain build only (tests/python/CMakeLists.txt): a
sanitizer build's libzinx.a needs its runtime linked in, which setup.py,
made for users' builds, does not do."""

import os
import shutil
import signal
import subprocess
import sys

from conftest import HERE, Program, free_port, write_config

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def test_pip_install_into_a_venv_runs_the_demo(tmp_path):
    build = os.environ["ZINX_PY_BUILD_DIR"]
    # A copy, so pip's in-tree build leaves nothing in the sources.
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "bindings", "python"),
                    src / "bindings" / "python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                  "__pycache__"))
    shutil.copytree(os.path.join(ROOT, "include"), src / "include")
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_PRELOAD")}
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    str(venv)], check=True, env=env, timeout=120)
    py = str(venv / "bin" / "python")
    pip = subprocess.run(
        [py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
         "--no-deps", str(src / "bindings" / "python")],
        env=dict(env, ZINX_BUILD_DIR=build), capture_output=True, text=True,
        timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    run = tmp_path / "run"
    run.mkdir()
    where = subprocess.run(
        [py, "-c", "import _zinx, znet.server; print(_zinx.__file__)"],
        cwd=str(run), env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(venv)), where.stdout

    port = free_port()
    write_config(str(run), TCPPort=port, PacketFormat="ltv_le")
    shutil.copy(os.path.join(HERE, "demo_hook.py"), run / "server.py")
    demo = Program(str(run / "server.py"), cwd=str(run), python=py,
                   base_env=env)
    try:
        with demo.connect(port, "ltv_le") as c:
            demo.wait_line(lambda l: l.startswith("======Start========"))
            c.send(1, b"installed")
            assert c.recv() == (1, b"ping\n")
            assert c.recv() == (1, b"installed")
        demo.wait_line(lambda l: l.startswith("======Stop========"))
        demo.proc.send_signal(signal.SIGINT)
        assert demo.wait_exit() == 0, demo.err
    finally:
        demo.kill()
