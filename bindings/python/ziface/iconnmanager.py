"""IConnManager: the live connections of a server."""

from abc import ABC, abstractmethod


class IConnManager(ABC):
    """Looks up the live connections of one server.

    The Go interface also has Add and Remove: there the connection calls
    them itself when it starts and ends. Here the C core keeps the table,
    so a connection is in it exactly while it is alive; a Python Add or
    Remove could only make the table lie, and they are not offered.
    """

    @abstractmethod
    def Len(self):
        """The number of live connections."""

    @abstractmethod
    def Get(self, conn_id):
        """The IConnection with that id; KeyError when it is not live."""

    @abstractmethod
    def ClearConn(self):
        """Stops every live connection (gracefully)."""
