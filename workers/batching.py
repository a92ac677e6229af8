"""Cutting a stream into lists of bounded size (itertools.batched is Python 3.12+)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` items, in order, reading `items` only as far as each list needs."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
