"""The move of a country between two editions: up (a better tier), down, same, new or unknown.

Moves compare the `tier_rank` each document was indexed with (workers/parse/facets.py ranks
the tiers), so reading editions never loads the parsers.
"""

from __future__ import annotations

UP, DOWN, SAME, NEW, UNKNOWN = "up", "down", "same", "new", "unknown"
MOVES = (UP, DOWN, SAME, NEW, UNKNOWN)


def tier_move(before: float | None, after: float | None, *, first: bool = False) -> str:
    """The move from rank `before` to rank `after` (a lower rank is a better tier); `first`: there
    is no earlier edition. A rank missing on either side (no tier found, a Special Case) is
    `unknown`: a move is never guessed."""
    if first:
        return NEW
    if before is None or after is None:
        return UNKNOWN
    if after < before:
        return UP
    return DOWN if after > before else SAME
