"""MsgHandle: the routers of one server (or client) by message id."""

from ziface.imsghandler import IMsgHandle
from ziface.irouter import IRouter


class MsgHandle(IMsgHandle):
    """The table of routers. The core dispatches received messages itself
    (on its workers); this table is what the Python side knows: which
    router serves which id (Apis), kept alive as long as the server."""

    def __init__(self):
        #: msg id -> router, as in the port.
        self.Apis = {}

    def AddRouter(self, msg_id, router):
        """Records router for msg_id; ValueError when the id has one."""
        if not isinstance(router, IRouter):
            raise TypeError("a router must be an IRouter (subclass "
                            "BaseRouter), not %s" % type(router).__name__)
        if msg_id in self.Apis:
            raise ValueError("msg id %d already has a router" % msg_id)
        self.Apis[msg_id] = router

    def GetRouter(self, msg_id):
        """The router of msg_id; KeyError when there is none."""
        return self.Apis[msg_id]

    def DoMsgHandler(self, request):
        """Runs the router of request.GetMsgID() in the calling thread:
        PreHandle, Handle, PostHandle. The core does this by itself for
        received messages; this is for calling a router from Python (a
        test, a message forwarded in-process). Unlike the core it lets an
        exception propagate; KeyError when no router has the id."""
        router = self.Apis[request.GetMsgID()]
        router.PreHandle(request)
        router.Handle(request)
        router.PostHandle(request)
