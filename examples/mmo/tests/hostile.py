#!/usr/bin/python3
"""Hostile input to zinx-mmo (issue 12: validation of client input).

    /usr/bin/python3 hostile.py PATH/TO/zinx-mmo

One player, the offender, sends what a broken or malicious client would:
malformed protobuf on 2 (Talk) and 3 (Position), positions outside the
world, NaN and infinite floats, chats above 256 bytes, a chat flood (more
than 5 at once; the bucket refills 2 a second), unknown message IDs and
empty payloads. After each, a valid move of the offender must still reach
its neighbour (the connection stays usable) and nothing else may reach
anyone: none of it is broadcast. Only a frame header above MaxPacketSize
closes the connection (as on every Zinx server), which the player's
neighbours then see as a departure (201). The server must stay up, exit 0
on SIGTERM and count every refusal in its `mmo:` line.
"""

import math
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import mmo_harness as h  # noqa: E402
from mmo_harness import (MSG_MOVE, MSG_TALK, Failure, encode_position,
                         encode_talk, ev_chat, pos)

O_HOME = pos(185.5, 160.5)  # (3, 5)
O_STEP = pos(187.5, 162.5)  # (3, 5) too: a valid move that stays put
N_HOME = pos(190.5, 165.5)  # (3, 5): the offender's neighbour
W_HOME = pos(100.5, 380.5)  # (0, 19): far, but every chat reaches it

NAN, INF = math.nan, math.inf

# Payloads that are no protobuf at all: refused_malformed.
MALFORMED = [
    ("Talk: Content's length past the end", MSG_TALK, b"\x0a\x05ab"),
    ("Talk: a tag without its length", MSG_TALK, b"\x0a"),
    # proto3 strings are UTF-8; Zinx's Go client cannot parse a chat that
    # is not, so forwarding it would break every client.
    ("Talk: Content not UTF-8", MSG_TALK, b"\x0a\x03\xff\xfe\xfd"),
    ("Position: a float cut short", MSG_MOVE, b"\x0d\x00\x00"),
    ("Position: a tag of 11 varint bytes", MSG_MOVE, b"\xff" * 11),
    ("Position: field 0, wire type 7", MSG_MOVE, b"\x07"),
]

# Well-formed Positions the world must refuse: refused_position.
BAD_POSITIONS = [
    ("X below the world", (84.5, 0.0, 200.5, 0.0)),
    ("X above the world", (410.5, 0.0, 200.5, 0.0)),
    ("Z below the world", (200.5, 0.0, 74.5, 0.0)),
    ("Z above the world", (200.5, 0.0, 400.5, 0.0)),
    ("far negative X", (-1e9, 0.0, 200.5, 0.0)),
    ("huge Z", (200.5, 0.0, 1e30, 0.0)),
    ("NaN X", (NAN, 0.0, 200.5, 0.0)),
    ("NaN Z", (200.5, 0.0, NAN, 0.0)),
    ("+inf X", (INF, 0.0, 200.5, 0.0)),
    ("-inf Z", (200.5, 0.0, -INF, 0.0)),
    ("NaN Y", (186.5, NAN, 161.5, 0.0)),
    ("-inf Y", (186.5, -INF, 161.5, 0.0)),
    ("+inf V", (186.5, 0.0, 161.5, INF)),
    ("NaN V", (186.5, 0.0, 161.5, NAN)),
]

# Frames no router takes: dropped, counted by none of the mmo counters.
UNKNOWN_IDS = [0, 1, 4, 99, 200, 201, 202, 0xFFFFFFFF]

CHAT_BURST = 5  # the flood: more than 5 at once ...
CHAT_REFILL_S = 2  # ... refilled 2 a second
FLOOD = 8


class Offender:
    """Sends one bad frame, then a valid move that must still reach the
    neighbour and nothing else anyone."""

    def __init__(self, world, player):
        self.w = world
        self.p = player
        self.flip = False

    def then_move(self, what):
        self.flip = not self.flip
        self.w.move(self.p, O_STEP if self.flip else O_HOME,
                    f"after {what}: still usable, nothing broadcast")

    def send(self, what, msg_id, payload):
        self.p.send(msg_id, payload)
        self.then_move(what)


def position_bytes(p):
    # The Python message keeps NaN and inf as they are: no rounding needed.
    return encode_position(p)


def scenario(exe, workdir):
    def play(server, w):
        o, _ = w.arrive("O")
        w.move(o, O_HOME)
        n, _ = w.arrive("N")
        w.move(n, N_HOME)
        far, _ = w.arrive("W")
        w.move(far, W_HOME)
        off = Offender(w, o)
        refused = {"refused_malformed": 0, "refused_position": 0,
                   "refused_chat_size": 0, "refused_chat_rate": 0}

        for what, msg_id, payload in MALFORMED:
            off.send(what, msg_id, payload)
            refused["refused_malformed"] += 1
        for what, p in BAD_POSITIONS:
            off.send(what, MSG_MOVE, position_bytes(p))
            refused["refused_position"] += 1
        # An empty Position is X 0, Z 0: outside the world.
        off.send("an empty Position", MSG_MOVE, b"")
        refused["refused_position"] += 1
        # An empty Talk is an empty chat: nothing to say, not broadcast.
        off.send("an empty Talk", MSG_TALK, b"")
        refused["refused_chat_size"] += 1
        for msg_id in UNKNOWN_IDS:
            off.send(f"unknown message ID {msg_id}", msg_id,
                     encode_talk("not for anyone"))
        if not server.alive():
            raise Failure("zinx-mmo died")

        # Chat size: bytes, not characters. Another player, so the rate
        # limit cannot mix in.
        s, _ = w.arrive("S")
        s.send(MSG_TALK, encode_talk("y" * 257))
        s.send(MSG_TALK, encode_talk("\u00e9" * 129))  # 129 chars, 258 bytes
        refused["refused_chat_size"] += 2
        w.talk(s, "x" * 256, "(256 bytes: the longest allowed; the two "
               "oversize chats before it not broadcast)")

        # The flood, in one write: the first 5 go out, the rest are refused.
        r, _ = w.arrive("R")
        texts = [f"flood {i}" for i in range(FLOOD)]
        r.send_raw(b"".join(h.frame(MSG_TALK, encode_talk(t)) for t in texts))
        w.chats += CHAT_BURST
        refused["refused_chat_rate"] += FLOOD - CHAT_BURST
        w.expect(f"R floods {FLOOD} chats: only the first {CHAT_BURST} "
                 "broadcast",
                 {q: [ev_chat(r.pid, t) for t in texts[:CHAT_BURST]]
                  for q in w.others(r)},
                 {r: [ev_chat(r.pid, t) for t in texts[:CHAT_BURST]]})
        flood_done = time.monotonic()
        # The bucket refills: a second later R may talk again.
        time.sleep(max(0.0, flood_done + 1.0 / CHAT_REFILL_S * 2 + 0.1
                       - time.monotonic()))
        w.talk(r, "after the refill", "(the bucket refilled)")

        # A frame header above MaxPacketSize (4096 by default) is the one
        # input that closes the connection, as on every Zinx server: the
        # player leaves as if it had hung up, and nobody else notices.
        k, _ = w.arrive("K")
        w.move(k, pos(195.5, 150.5))  # (3, 4): near O and N
        k.send_raw(struct.pack("<II", 1 << 30, MSG_MOVE) + b"\x0d")
        w.closed_by_server(k, "a header announcing 1 GiB")

        # A move after all that, and a newcomer: the server still serves.
        off.then_move("all of the above")
        w.arrive("T")
        w.leave_all()
        return refused

    h.play(exe, workdir, play)


if __name__ == "__main__":
    h.run(scenario)
