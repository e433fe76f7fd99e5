"""The hook chapter's demo of the Python port (demo_hook.py, the issue's
program verbatim) run as a program against a client: it must run
unchanged on this binding, in the port's own framing (ltv_le)."""

import os
import re
import signal

from conftest import HERE, FrameClient, Program, free_port, write_config

DEMO = os.path.join(HERE, "demo_hook.py")


def conn_id_of(line, word):
    m = re.fullmatch(r"======%s======== (\d+)" % word, line)
    assert m, "not a %s line: %r" % (word, line)
    return int(m.group(1))


def test_hook_demo_runs_unchanged(tmp_path):
    # The demo reads conf/zinx.json of its folder: the port is the one the
    # test chose (a free one) and wrote there.
    port = free_port()
    write_config(str(tmp_path), TCPPort=port, PacketFormat="ltv_le")
    demo = Program(DEMO, cwd=str(tmp_path))
    try:
        ids = []
        for i, text in enumerate((b"hello zinx", b"second client")):
            if i == 0:
                c = demo.connect(port, "ltv_le")
            else:
                c = FrameClient(port, "ltv_le")
            with c:
                start = demo.wait_line(lambda l: "Start" in l)
                ids.append(conn_id_of(start, "Start"))
                for n in range(3):
                    payload = text + b" #%d" % n
                    c.send(1, payload)
                    assert c.recv() == (1, b"ping\n")
                    assert c.recv() == (1, payload)
                    # The handler's print(request.GetData()).
                    demo.wait_line(lambda l: l == repr(payload))
            stop = demo.wait_line(lambda l: "Stop" in l)
            assert conn_id_of(stop, "Stop") == ids[-1]
        assert ids[0] != ids[1], ids

        # A client still connected when Ctrl-C comes: Serve() returns
        # after a graceful stop, which ends the connection (its Stop line).
        c = FrameClient(port, "ltv_le")
        last = conn_id_of(demo.wait_line(lambda l: "Start" in l), "Start")
        c.send(1, b"last")
        assert c.recv() == (1, b"ping\n")
        assert c.recv() == (1, b"last")
        demo.proc.send_signal(signal.SIGINT)
        assert demo.wait_exit() == 0, demo.err
        assert "======Stop======== %d" % last in demo.out
        c.expect_eof()
        c.close()
        assert not any("Traceback" in l for l in demo.err), demo.err
    finally:
        demo.kill()
