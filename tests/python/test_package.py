"""The package around the C module: the abstract interfaces, GlobalObject
over conf/zinx.json, Message and DataPack against the server's framing,
the connection manager, and the stop of running servers at exit."""

import json
import queue
import socket

import pytest

from conftest import TIMEOUT, FrameClient, Program, free_port, wait_for, \
    write_config
from ziface.iconnection import IConnection
from ziface.iconnmanager import IConnManager
from ziface.irequest import IRequest
from ziface.irouter import IRouter
from ziface.iserver import IServer
from zconf import GlobalObject
from znet.connection import Connection
from znet.datapack import DataPack, NewDataPack
from znet.message import Message, NewMessage
from znet.request import Request
from znet.router import BaseRouter
from znet.server import NewServer


class Echo(BaseRouter):
    def Handle(self, request):
        request.GetConnection().SendMsg(request.GetMsgID(),
                                        request.GetData())


def test_interfaces_are_abstract_and_registered(make_server):
    for abc in (IServer, IRouter, IConnection, IRequest, IConnManager):
        with pytest.raises(TypeError):
            abc()
    assert issubclass(Connection, IConnection)
    assert issubclass(Request, IRequest)
    seen = queue.Queue()

    class Check(BaseRouter):
        def Handle(self, request):
            seen.put((isinstance(request, IRequest),
                      isinstance(request.GetConnection(), IConnection)))

    server = make_server()
    assert isinstance(server, IServer)
    assert isinstance(server.GetConnMgr(), IConnManager)
    server.AddRouter(1, Check())
    server.Start()
    with FrameClient(server.GetPort()) as c:
        c.send(1, b"")
        assert seen.get(timeout=TIMEOUT) == (True, True)


def test_global_object_reads_the_file_and_takes_overrides(tmp_path):
    write_config(str(tmp_path), Name="from-file", TCPPort=4321,
                 MaxConn=77, PacketFormat="ltv_le")
    GlobalObject.Reload()
    assert GlobalObject.Name == "from-file"
    assert GlobalObject.TCPPort == 4321
    assert GlobalObject.MaxConn == 77
    assert GlobalObject.PacketFormat == "ltv_le"
    # Every key of the C library is an attribute, defaults included.
    for key in ("Host", "WorkerPoolSize", "MaxPacketSize", "IOBackend",
                "HeartbeatMax"):
        assert key in dir(GlobalObject)
        getattr(GlobalObject, key)
    with pytest.raises(AttributeError):
        GlobalObject.NoSuchKey
    with pytest.raises(ValueError):
        GlobalObject.NoSuchKey = 1
    with pytest.raises(ValueError):
        GlobalObject.TCPPort = 70000
    assert GlobalObject.TCPPort == 4321  # a refused value changes nothing
    GlobalObject.TCPPort = 0
    GlobalObject.PacketFormat = "tlv"
    assert GlobalObject.Overrides() == {"TCPPort": 0, "PacketFormat": "tlv"}
    # The overrides apply on top of the file to the next server.
    server = NewServer()
    try:
        assert server.Name == "from-file"
        server.AddRouter(1, Echo())
        server.Start()
        assert server.GetPort() not in (0, 4321)
        with FrameClient(server.GetPort(), "tlv") as c:
            c.send(1, b"tlv")
            assert c.recv() == (1, b"tlv")
    finally:
        server.Stop()
    del GlobalObject.TCPPort
    assert GlobalObject.TCPPort == 4321


def test_bad_file_is_reported(tmp_path):
    (tmp_path / "conf" / "zinx.json").write_text('{"TCPPort": "no"}')
    with pytest.raises(ValueError):
        NewServer()


@pytest.mark.parametrize("fmt", ["tlv", "ltv_le"])
def test_datapack_frames_as_the_server_does(make_server, fmt):
    pack = NewDataPack(fmt, 4096)
    assert pack.GetHeadLen() == 8
    msg = NewMessage(0x01020304, b"payload")
    frame = pack.Pack(msg)
    if fmt == "tlv":
        assert frame[:8] == bytes([1, 2, 3, 4, 0, 0, 0, 7])
    else:
        assert frame[:8] == bytes([7, 0, 0, 0, 4, 3, 2, 1])
    head = pack.Unpack(frame[:8])
    assert (head.GetMsgID(), head.GetDataLen()) == (0x01020304, 7)
    with pytest.raises(ValueError):
        pack.Unpack(frame[:7])
    with pytest.raises(ValueError):
        pack.Pack(Message(1, bytes(4097)))
    with pytest.raises(ValueError):
        pack.Pack(Message(-1, b""))

    # Against the server configured with the same format.
    server = make_server({"PacketFormat": fmt})
    server.AddRouter(9, Echo())
    server.Start()
    with socket.create_connection(("127.0.0.1", server.GetPort()),
                                  TIMEOUT) as s:
        s.sendall(pack.Pack(Message(9, b"abc")) + pack.Pack(Message(9, b"")))
        for want in (b"abc", b""):
            buf = b""
            while len(buf) < 8:
                buf += s.recv(8 - len(buf))
            got = pack.Unpack(buf)
            data = b""
            while len(data) < got.GetDataLen():
                data += s.recv(got.GetDataLen() - len(data))
            got.SetData(data)
            assert got == Message(9, want)


def test_datapack_defaults_to_the_configuration(tmp_path):
    write_config(str(tmp_path), PacketFormat="ltv_le", MaxPacketSize=100)
    GlobalObject.Reload()
    pack = DataPack()
    assert pack.PacketFormat == "ltv_le" and pack.MaxPacketSize == 100
    with pytest.raises(ValueError):
        DataPack("xml", 10)


def test_conn_manager_len_get_clear(make_server):
    stops = queue.Queue()
    server = make_server()
    server.AddRouter(1, Echo())
    server.SetOnConnStop(lambda c: stops.put(c.GetConnID()))
    server.Start()
    mgr = server.GetConnMgr()
    assert mgr.Len() == 0
    clients = [FrameClient(server.GetPort()) for _ in range(3)]
    try:
        wait_for(lambda: mgr.Len() == 3, TIMEOUT, "3 connections")
        ids = mgr.GetConnIDs()
        assert len(ids) == 3
        for conn_id in ids:
            conn = mgr.Get(conn_id)
            assert conn.GetConnID() == conn_id
            assert mgr.Get(conn_id) is conn  # one object per connection
        with pytest.raises(KeyError):
            mgr.Get(max(ids) + 1000)
        assert mgr.ClearConn() == 3
        for c in clients:
            c.expect_eof()
        assert sorted(stops.get(timeout=TIMEOUT) for _ in ids) == sorted(ids)
        wait_for(lambda: mgr.Len() == 0, TIMEOUT, "no connection")
    finally:
        for c in clients:
            c.close()


EXIT_SCRIPT = r'''
import sys
from znet.server import NewServer
from znet.client import NewClient
from znet.router import BaseRouter

class Echo(BaseRouter):
    def Handle(self, request):
        request.GetConnection().SendMsg(2, request.GetData())

server = NewServer()
server.AddRouter(1, Echo())
server.SetOnConnStop(lambda c: sys.stdout.write("server stop %d\n" % c.GetConnID()))
server.Start()
client = NewClient("127.0.0.1", server.GetPort())
client.SetOnConnStop(lambda c: sys.stdout.write("client stop\n"))
client.Start()
print("port", server.GetPort(), flush=True)
sys.stdin.readline()
# The main thread ends with the server and the client running: atexit
# must stop both before the interpreter finalizes.
'''


def test_running_endpoints_are_stopped_at_exit(tmp_path):
    script = tmp_path / "exit.py"
    script.write_text(EXIT_SCRIPT)
    prog = Program(str(script), cwd=str(tmp_path))
    try:
        line = prog.wait_line(lambda l: l.startswith("port "))
        port = int(line.split()[1])
        with FrameClient(port) as outsider:
            outsider.send(1, b"x")
            assert outsider.recv() == (2, b"x")
            prog.proc.stdin.close()  # the script's main thread ends
            outsider.expect_eof()
        assert prog.wait_exit() == 0, prog.err
        assert "client stop" in prog.out, prog.out
        # The client's connection and the outsider's.
        assert sum(l.startswith("server stop") for l in prog.out) == 2
        assert not any("Traceback" in l for l in prog.err), prog.err
    finally:
        prog.kill()
