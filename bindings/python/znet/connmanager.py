"""ConnManager: the live connections of a server, as the core keeps them."""

from ziface.iconnmanager import IConnManager


class ConnManager(IConnManager):
    """A view of the core's connection table (Server.GetConnMgr()).

    Add and Remove of the Go interface are not offered: the core adds a
    connection when it starts and removes it when it ends, so the table
    always says which connections are alive (see IConnManager).
    """

    def __init__(self, core):
        self._core = core

    def Len(self):
        """The number of live connections."""
        return self._core.GetConnCount()

    def Get(self, conn_id):
        """The Connection with conn_id; KeyError when it is not live."""
        return self._core.GetConn(conn_id)

    def GetConnIDs(self):
        """The ids of the live connections (a snapshot list)."""
        return self._core.GetConnIDs()

    def ClearConn(self):
        """Stops every live connection gracefully (each sends what it has
        queued, then OnConnStop runs for it); returns how many were asked
        to stop. Connections accepted meanwhile are not affected."""
        stopped = 0
        for conn_id in self._core.GetConnIDs():
            try:
                conn = self._core.GetConn(conn_id)
            except KeyError:
                continue  # ended since the snapshot
            conn.Stop()
            stopped += 1
        return stopped
