"""Connection: the C module's connection type, registered as an
IConnection."""

from ziface.iconnection import IConnection
from znet import _core

#: One live connection; the same object in every hook and handler of the
#: connection. GetConnID, SendMsg/SendBuffMsg(id, bytes-like), Stop,
#: IsAlive, SetProperty/GetProperty/RemoveProperty, RemoteAddr() ->
#: (host, port), GetRemoteAddr (the same), RemoteAddrString() ->
#: "host:port".
Connection = _core.zinx.Connection

IConnection.register(Connection)
