"""IClient: a Zinx client, one connection to a Zinx server."""

from abc import ABC, abstractmethod


class IClient(ABC):
    """Connects to a server and handles its replies with routers, the same
    way a server handles requests."""

    @abstractmethod
    def Start(self):
        """Connects; raises ConnectionError when it cannot."""

    @abstractmethod
    def Stop(self):
        """Closes the connection gracefully and stops the client."""

    @abstractmethod
    def AddRouter(self, msg_id, router):
        """Routes the server's messages of msg_id to router; before
        Start."""

    @abstractmethod
    def Conn(self):
        """The IConnection to the server (None before Start)."""

    @abstractmethod
    def SetOnConnStart(self, hook):
        """hook(connection) runs once connected."""

    @abstractmethod
    def SetOnConnStop(self, hook):
        """hook(connection) runs once when the connection ends."""
