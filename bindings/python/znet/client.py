"""Client and NewClient: one connection to a Zinx server, handled by
routers on the core's workers as a server handles its requests."""

from ziface.iclient import IClient
from znet.server import Server


class Client(IClient):
    """A client of the server at ip:port, configured as a server is
    (GlobalObject, then config: PacketFormat, WorkerPoolSize, ...).

    The server's messages are routed by id to the routers added with
    AddRouter; replies go through Conn().SendMsg().
    """

    def __init__(self, ip, port, config=None, timeout=5.0):
        self._endpoint = Server(config, _client=True)
        self._ip = ip
        self._port = int(port)
        self._timeout_ms = int(timeout * 1000)
        self._conn = None

    def AddRouter(self, msg_id, router):
        """Routes the server's messages of msg_id to router; before
        Start."""
        self._endpoint.AddRouter(msg_id, router)

    def SetOnConnStart(self, hook):
        """hook(connection) runs once connected."""
        self._endpoint.SetOnConnStart(hook)

    def SetOnConnStop(self, hook):
        """hook(connection) runs once when the connection ends."""
        self._endpoint.SetOnConnStop(hook)

    def Start(self):
        """Starts the client's threads and connects; ConnectionError (and
        the client stopped again) when the server cannot be reached within
        the timeout."""
        self._endpoint._core.Start()
        try:
            self._conn = self._endpoint._core.Dial(
                self._ip, self._port, self._timeout_ms)
        except BaseException:
            self.Stop()
            raise

    def Conn(self):
        """The Connection to the server (None before Start)."""
        return self._conn

    def GetMsgHandler(self):
        """The MsgHandle (routers by id) of this client."""
        return self._endpoint.msgHandler

    def Stop(self):
        """Closes the connection gracefully (what is queued is sent, then
        OnConnStop runs) and stops the client's threads. From a handler or
        hook it only asks for the stop."""
        self._endpoint._core.Stop()


def NewClient(ip, port, config=None, timeout=5.0):
    """A Client of ip:port (not yet connected: call Start)."""
    return Client(ip, port, config, timeout)
