"""Message: a message id and its payload (pure Python, as in the port)."""

from ziface.imessage import IMessage


class Message(IMessage):
    """One message. Data is bytes; DataLen is len(Data) unless set
    otherwise (Unpack sets it from a header before the data is read)."""

    __slots__ = ("Id", "DataLen", "Data")

    def __init__(self, msg_id=0, data=b""):
        self.Id = msg_id
        self.Data = bytes(data)
        self.DataLen = len(self.Data)

    def GetDataLen(self):
        """The payload length."""
        return self.DataLen

    def GetMsgID(self):
        """The message id."""
        return self.Id

    GetMsgId = GetMsgID  # the Go spelling

    def GetData(self):
        """The payload (bytes)."""
        return self.Data

    def SetMsgID(self, msg_id):
        """Sets the message id."""
        self.Id = msg_id

    SetMsgId = SetMsgID  # the Go spelling

    def SetData(self, data):
        """Sets the payload and its length."""
        self.Data = bytes(data)
        self.DataLen = len(self.Data)

    def SetDataLen(self, length):
        """Sets the payload length."""
        self.DataLen = length

    def __repr__(self):
        return "Message(%d, %r)" % (self.Id, self.Data)

    def __eq__(self, other):
        if not isinstance(other, Message):
            return NotImplemented
        return (self.Id, self.Data, self.DataLen) == (
            other.Id, other.Data, other.DataLen)

    __hash__ = None


def NewMessage(msg_id, data):
    """A Message with msg_id and data (bytes-like)."""
    return Message(msg_id, data)
