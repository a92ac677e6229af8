"""Cutting a stream into lists of bounded length (itertools.batched is Python 3.12+) or bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` items, in order, reading `items` only as far as each list needs."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def by_bytes(items: Iterable[T], size: Callable[[T], int], max_bytes: int, most: int | None = None) -> Iterator[list[T]]:
    """Lists of items in order, each of at most `max_bytes` bytes (by `size`) and `most` items (an
    item larger than `max_bytes` goes alone)."""
    chunk: list[T] = []
    total = 0
    for item in items:
        weight = size(item)
        if chunk and ((most is not None and len(chunk) >= most) or total + weight > max_bytes):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += weight
    if chunk:
        yield chunk
