"""IMessage: a message id with its payload, as framed on the wire."""

from abc import ABC, abstractmethod


class IMessage(ABC):
    """One message: an id, a payload and the payload's length."""

    @abstractmethod
    def GetDataLen(self):
        """The payload's length in bytes (from the header once unpacked)."""

    @abstractmethod
    def GetMsgID(self):
        """The message id."""

    @abstractmethod
    def GetData(self):
        """The payload (bytes)."""

    @abstractmethod
    def SetMsgID(self, msg_id):
        """Sets the message id."""

    @abstractmethod
    def SetData(self, data):
        """Sets the payload (and its length)."""

    @abstractmethod
    def SetDataLen(self, length):
        """Sets the payload length (what Unpack reads from a header)."""
