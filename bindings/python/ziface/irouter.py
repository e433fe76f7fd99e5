"""IRouter: the three steps that handle one message id."""

from abc import ABC, abstractmethod


class IRouter(ABC):
    """Handles the messages of one id: PreHandle, Handle, then PostHandle,
    each called with the IRequest, on one of the server's workers.

    An exception in a step is logged with its traceback by the server and
    skips the remaining steps of that message only.
    """

    @abstractmethod
    def PreHandle(self, request):
        """Runs before Handle (checks, decoding)."""

    @abstractmethod
    def Handle(self, request):
        """Handles the message (the business logic)."""

    @abstractmethod
    def PostHandle(self, request):
        """Runs after Handle (bookkeeping, replies that follow)."""
