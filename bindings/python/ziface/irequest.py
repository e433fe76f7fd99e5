"""IRequest: one received message together with its connection."""

from abc import ABC, abstractmethod


class IRequest(ABC):
    """What a router step receives. Valid while its handler runs: keep the
    data (GetData returns a copy) or the connection, not the request."""

    @abstractmethod
    def GetConnection(self):
        """The IConnection the message came on."""

    @abstractmethod
    def GetData(self):
        """The message's payload as bytes."""

    @abstractmethod
    def GetMsgID(self):
        """The message's id (an int)."""
