"""IServer: a Zinx server."""

from abc import ABC, abstractmethod


class IServer(ABC):
    """A server: routers by message id, connection hooks, and its life
    (Start, Serve, Stop)."""

    @abstractmethod
    def Start(self):
        """Starts listening and serving; returns at once."""

    @abstractmethod
    def Stop(self):
        """Stops gracefully: queued replies are sent, OnConnStop runs for
        every connection. Called from a handler or hook it only asks for
        the stop (Serve then returns)."""

    @abstractmethod
    def Serve(self):
        """Start, then block until Stop(), Ctrl-C or SIGTERM; returns
        after the graceful stop."""

    @abstractmethod
    def AddRouter(self, msg_id, router):
        """Routes the messages of msg_id to router (an IRouter); before
        Start only."""

    @abstractmethod
    def GetConnMgr(self):
        """The IConnManager of the live connections."""

    @abstractmethod
    def SetOnConnStart(self, hook):
        """hook(connection) runs when a connection starts."""

    @abstractmethod
    def SetOnConnStop(self, hook):
        """hook(connection) runs once when a connection ends, after its
        last handler."""

    @abstractmethod
    def CallOnConnStart(self, conn):
        """Calls the OnConnStart hook now with conn."""

    @abstractmethod
    def CallOnConnStop(self, conn):
        """Calls the OnConnStop hook now with conn."""
