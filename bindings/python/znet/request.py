"""Request: the C module's request type, registered as an IRequest."""

from ziface.irequest import IRequest
from znet import _core

#: What a router step receives: GetConnection(), GetData() (bytes),
#: GetMsgID(), and Abort() (skips the remaining steps of this message).
#: Valid while its handler runs; GetData() afterwards raises RuntimeError.
Request = _core.zinx.Request

IRequest.register(Request)
