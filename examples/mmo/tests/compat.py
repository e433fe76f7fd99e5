#!/usr/bin/python3
"""Compatibility check of zinx-mmo (issue 12, part 5).

    /usr/bin/python3 compat.py PATH/TO/zinx-mmo

Drives the server with a client written only from the protocol facts of
Zinx's mmo_game (mmo_harness.py, compat_msg.proto) and checks, message by
message and player by player:
  - a new player's arrival: 1 SyncPID, 200 Tp 2 at its spawn, 202 with the
    players of its nine cells at their current positions; those players
    see it appear (200 Tp 2), nobody else gets anything;
  - a chat (2 Talk) reaches every other player, near or far, as 200 Tp 1;
  - a move (3 Position) reaches only the mover's nine cells as 200 Tp 4,
    and a move across cells makes the players it leaves and the mover see
    each other disappear (201) and the players it reaches and the mover see
    each other appear (200 Tp 2);
  - a player's departure reaches its nine cells as 201, not a far player;
  - after SIGTERM the server exits 0 with counters matching what was sent.
Players are placed with moves so that "near" and "far" are certain.
"""

import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import mmo_harness as h  # noqa: E402
from mmo_harness import Failure, pos

# Cells (column, row) used below; see the module's doc for the grid.
A_HOME = pos(185.5, 160.25, y=0.5, v=45.0)  # (3, 5)
B_HOME = pos(190.5, 165.5)  # (3, 5), with A
B_EAST = pos(220.5, 165.5)  # (4, 5)
C_HOME = pos(250.5, 165.5)  # (5, 5): near B_EAST only
D_HOME = pos(160.5, 165.5)  # (2, 5): near B_HOME only
E_HOME = pos(230.5, 210.5)  # (4, 8): three rows below, near neither
F_HOME = pos(390.5, 390.25)  # (9, 19): the far player


def names(players):
    return sorted(p.name for p in players)


def same(got, want, what):
    if names(got) != sorted(want):
        raise Failure(f"scenario: {what} is {names(got)}, expected "
                      f"{sorted(want)} (the test's placement is wrong)")


def scenario(exe, workdir):
    def play(server, w):
        a, _ = w.arrive("A")
        w.move(a, pos(100.5, 380.25, y=0.5, v=45.0), "(out of the way)")
        f, near_f = w.arrive("F")
        same(near_f, [], "F's neighbours on arrival")
        w.move(f, F_HOME, "(the far player)")
        w.move(a, A_HOME, "(into the spawn area)")

        # A newcomer next to A must see A in its 202, at A's position
        # after its moves, and A must see it appear. Zinx's spawn area
        # spans four rows, so a newcomer may land out of A's sight (one in
        # ten): such a one is checked as well, then leaves.
        for attempt in range(20):
            b, near_b = w.arrive("B" if attempt == 0 else f"B{attempt}")
            if a in near_b:
                b.name = "B"
                break
            w.leave(b)
        else:
            raise Failure("20 newcomers, none in A's nine cells")
        w.move(b, B_HOME)
        c, _ = w.arrive("C")
        w.move(c, C_HOME)
        d, _ = w.arrive("D")
        w.move(d, D_HOME)
        e, _ = w.arrive("E")
        w.move(e, E_HOME)

        # Across cells: A stays in view, D leaves it, C comes into it, E and
        # F see nothing.
        kinds = w.move(b, B_EAST, "(across a cell border)")
        same(kinds["both"], ["A"], "in view before and after B's move")
        same(kinds["old"], ["D"], "out of view after B's move")
        same(kinds["new"], ["C"], "into view after B's move")

        w.talk(b, "hello from B, h\u00e9llo \u4e16\u754c", "(to all, far F too)")
        w.talk(f, "hello from far away")

        # Within a cell: only the nine cells hear of it.
        kinds = w.move(a, pos(186.5, 161.75, y=1.25, v=90.0), "(same cell)")
        same(kinds["both"], ["B", "D"], "A's neighbours")
        kinds = w.move(f, pos(395.25, 385.5), "(far, same cell)")
        same(kinds["both"], [], "F's neighbours")

        # What any protobuf 3 peer may send: fields in another order, a
        # field twice (the last counts), a field this version does not know
        # (skipped); and TCP may cut a frame anywhere.
        to = pos(184.5, 159.5, y=2.5, v=180.0)
        w.move(a, to, "(fields V, Z, Y, X, X twice, unknown field 9)",
               payload=b"".join([
                   b"\x25" + struct.pack("<f", to[3]),
                   b"\x1d" + struct.pack("<f", to[2]),
                   b"\x0d" + struct.pack("<f", 100.0),
                   b"\x15" + struct.pack("<f", to[1]),
                   b"\x48\x96\x01",  # field 9, varint 150
                   b"\x0d" + struct.pack("<f", to[0])]))
        w.move(a, pos(183.5, 158.5), "(the frame sent a byte at a time)",
               split=True)

        same(w.leave(d), ["A"], "D's neighbours as it leaves")
        same(w.leave(b), ["A", "C"], "B's neighbours as it leaves")

        # A late newcomer sees the others where they are now.
        w.arrive("G")
        w.leave_all()

        return {"refused_malformed": 0, "refused_position": 0,
                "refused_chat_size": 0, "refused_chat_rate": 0}

    w = h.play(exe, workdir, play)
    for name, seq in w.arrivals:
        h.log(f"arrival of {name}: {', '.join(seq)}")


if __name__ == "__main__":
    h.run(scenario)
