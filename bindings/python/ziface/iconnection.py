"""IConnection: one client connection of a server (or a client's link)."""

from abc import ABC, abstractmethod


class IConnection(ABC):
    """A live connection. The core creates, starts and closes connections;
    the same object is given to every hook and handler of one connection.

    Left out of the Go interface: Start (the core starts a connection
    before OnConnStart) and GetTCPConnection (the socket belongs to the
    core's I/O threads; reading or writing it from Python would corrupt
    the stream).
    """

    @abstractmethod
    def GetConnID(self):
        """The connection's id (an int, unique within its server)."""

    @abstractmethod
    def Stop(self):
        """Closes the connection gracefully: queued replies are sent
        first, then OnConnStop runs once."""

    @abstractmethod
    def SendMsg(self, msg_id, data):
        """Frames data (bytes-like) with msg_id in the server's
        PacketFormat and sends it. Inside a handler or hook the send is
        queued and carried out right after the Python call returns."""

    @abstractmethod
    def SendBuffMsg(self, msg_id, data):
        """The same as SendMsg (the core always buffers)."""

    @abstractmethod
    def RemoteAddr(self):
        """The peer's address as (host, port)."""

    @abstractmethod
    def SetProperty(self, key, value):
        """Stores any Python object under a str key; it lives as long as
        the connection (or until replaced or removed)."""

    @abstractmethod
    def GetProperty(self, key):
        """The object stored under key; KeyError when there is none."""

    @abstractmethod
    def RemoveProperty(self, key):
        """Removes (and releases) the object stored under key; KeyError
        when there is none."""

    @abstractmethod
    def AddCloseCallback(self, handler, key, callback):
        """callback() runs once when the connection ends, right after
        OnConnStop, in the order added; the same (handler, key) again
        replaces the callback and keeps its place."""

    @abstractmethod
    def RemoveCloseCallback(self, handler, key):
        """The callback of (handler, key) will not run (nothing happens
        when there is none)."""

    @abstractmethod
    def IsAlive(self):
        """False once the connection is closing or closed."""
