"""DataPack: Zinx framing in pure Python, in the configured PacketFormat.

For Python peers of a server (tests, tools, a client over a plain
socket): the core frames its own connections. Layouts, 8-byte header:
  "tlv"     big-endian u32 id, big-endian u32 length, payload
  "ltv_le"  little-endian u32 length, little-endian u32 id, payload
            (the Go and Python ports' layout)
"""

import struct

from ziface.idatapack import IDataPack
from znet.message import Message

_LAYOUTS = {
    # name: (struct format of the header, index of the id in it)
    "tlv": (struct.Struct(">II"), 0),
    "ltv_le": (struct.Struct("<II"), 1),
}

_U32_MAX = 0xFFFFFFFF


class DataPack(IDataPack):
    """Packs and unpacks frames of one layout. packet_format and
    max_packet_size default to GlobalObject's PacketFormat and
    MaxPacketSize (read when the DataPack is made)."""

    def __init__(self, packet_format=None, max_packet_size=None):
        if packet_format is None or max_packet_size is None:
            from zconf import GlobalObject
            if packet_format is None:
                packet_format = GlobalObject.PacketFormat
            if max_packet_size is None:
                max_packet_size = GlobalObject.MaxPacketSize
        try:
            self._head, self._id_at = _LAYOUTS[packet_format]
        except KeyError:
            raise ValueError("unknown PacketFormat %r (expected %s)" % (
                packet_format, " or ".join(_LAYOUTS))) from None
        self.PacketFormat = packet_format
        self.MaxPacketSize = max_packet_size

    def GetHeadLen(self):
        """8: the header's length."""
        return self._head.size

    def Pack(self, msg):
        """The frame of msg (an IMessage) as bytes. ValueError when the id
        is not a u32 or the payload is over MaxPacketSize."""
        msg_id = msg.GetMsgID()
        data = bytes(msg.GetData())
        if not 0 <= msg_id <= _U32_MAX:
            raise ValueError("msg id %r is not a u32" % (msg_id,))
        if len(data) > self.MaxPacketSize:
            raise ValueError("payload of %d bytes is over MaxPacketSize %d"
                             % (len(data), self.MaxPacketSize))
        fields = [len(data), len(data)]
        fields[self._id_at] = msg_id
        return self._head.pack(*fields) + data

    def Unpack(self, head):
        """A Message with the id and length of a header (head: at least
        GetHeadLen() bytes; its data is empty, DataLen says how much to
        read). ValueError for a short header or a length over
        MaxPacketSize."""
        if len(head) < self._head.size:
            raise ValueError("a header is %d bytes, got %d"
                             % (self._head.size, len(head)))
        fields = self._head.unpack_from(head)
        msg_id = fields[self._id_at]
        length = fields[1 - self._id_at]
        if length > self.MaxPacketSize:
            raise ValueError("frame of %d bytes is over MaxPacketSize %d"
                             % (length, self.MaxPacketSize))
        msg = Message(msg_id, b"")
        msg.SetDataLen(length)
        return msg


def NewDataPack(packet_format=None, max_packet_size=None):
    """A DataPack (see DataPack)."""
    return DataPack(packet_format, max_packet_size)
