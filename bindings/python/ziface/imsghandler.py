"""IMsgHandle: the routers of a server by message id."""

from abc import ABC, abstractmethod


class IMsgHandle(ABC):
    """Maps message ids to routers.

    The Go interface also starts the worker pool and queues requests
    (StartWorkerPool, SendMsgToTaskQueue): here the C core's workers do
    that, sized by WorkerPoolSize, so those are not offered.
    """

    @abstractmethod
    def AddRouter(self, msg_id, router):
        """Registers router for msg_id (one router per id)."""

    @abstractmethod
    def DoMsgHandler(self, request):
        """Runs the router of request.GetMsgID(): PreHandle, Handle,
        PostHandle."""
