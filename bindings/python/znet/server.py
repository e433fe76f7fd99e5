"""Server and NewServer: a Zinx server on the C core."""

import json

from ziface.iserver import IServer
from zconf import GlobalObject
from znet import _core
from znet.connmanager import ConnManager
from znet.msghandler import MsgHandle
from znet.router import steps_of

# Imported for their registration with the ABCs (IConnection, IRequest).
import znet.connection  # noqa: F401
import znet.request  # noqa: F401


class Server(IServer):
    """A server with GlobalObject's configuration (the file plus the
    programmatic overrides) and config, a dict of further overrides.

    Handlers and hooks run on the core's worker threads and hold the GIL
    only while the Python function runs. A started server is kept alive
    by the C module (through atexit) until it is stopped, and stopped at
    interpreter exit at the latest.
    """

    def __init__(self, config=None, _client=False):
        GlobalObject._Invalidate()
        overrides = GlobalObject.OverridesJSON(config)
        self._core = _core.zinx.Server(overrides, _client)
        effective = json.loads(_core.zinx.config_json(overrides))
        #: The port's attributes, from the effective configuration.
        self.Name = effective.get("Name")
        self.IP = effective.get("Host")
        self.Port = effective.get("TCPPort")
        self.msgHandler = MsgHandle()
        self._conn_mgr = ConnManager(self._core)
        self._on_start = None
        self._on_stop = None

    def AddRouter(self, msg_id, router):
        """Routes msg_id to router (an IRouter, usually a BaseRouter
        subclass): its overridden steps run on the workers for each
        message of that id. ValueError when the id has a router,
        RuntimeError after Start."""
        pre, handle, post = steps_of(router)
        self._core.AddRouter(msg_id, pre, handle, post)
        self.msgHandler.Apis[msg_id] = router

    def SetOnConnStart(self, hook):
        """hook(connection) runs when a connection starts (None: none)."""
        self._core.SetOnConnStart(hook)
        self._on_start = hook

    def SetOnConnStop(self, hook):
        """hook(connection) runs once when a connection ends, after its
        last handler (None: none)."""
        self._core.SetOnConnStop(hook)
        self._on_stop = hook

    def GetOnConnStart(self):
        """The OnConnStart hook or None."""
        return self._on_start

    def GetOnConnStop(self):
        """The OnConnStop hook or None."""
        return self._on_stop

    def CallOnConnStart(self, conn):
        """Calls the OnConnStart hook now with conn."""
        self._core.CallOnConnStart(conn)

    def CallOnConnStop(self, conn):
        """Calls the OnConnStop hook now with conn."""
        self._core.CallOnConnStop(conn)

    def Start(self):
        """Binds and starts serving on the core's threads; returns at once
        (OSError or ValueError when it cannot start)."""
        self._core.Start()

    def Serve(self):
        """Start, then block until Stop(), Ctrl-C (SIGINT) or SIGTERM;
        returns after the graceful stop (replies sent, OnConnStop run)."""
        self._core.Serve()

    def Stop(self):
        """Stops gracefully. From a handler or hook it only asks for the
        stop, which the core carries out once the handler has returned."""
        self._core.Stop()

    def GetConnMgr(self):
        """The ConnManager of the live connections (Len, Get, ClearConn)."""
        return self._conn_mgr

    def GetPort(self):
        """The TCP port the server is bound to (useful with TCPPort 0)."""
        return self._core.GetPort()

    def Log(self, level, text):
        """Writes text to the server's log at level (an int, as the C
        library's levels)."""
        self._core.Log(level, text)


def NewServer(config=None):
    """A Server configured from conf/zinx.json (or
    $ZINX_CONFIG_FILE_PATH), GlobalObject's overrides, then config (a dict
    of keys, optional)."""
    return Server(config)
