"""IDataPack: framing of messages (header + payload)."""

from abc import ABC, abstractmethod


class IDataPack(ABC):
    """Packs an IMessage into a frame and unpacks a frame's header."""

    @abstractmethod
    def GetHeadLen(self):
        """The header's length in bytes."""

    @abstractmethod
    def Pack(self, msg):
        """The frame of msg (header then payload) as bytes."""

    @abstractmethod
    def Unpack(self, head):
        """An IMessage with the id and payload length read from a header
        (its data is then read by the caller: GetDataLen bytes)."""
