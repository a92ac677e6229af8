"""Main text of a page without a site parser: trafilatura's and the generic rules', by vote.

trafilatura (checked against 2.3.1) finds the article on news and blog layouts the
generic rules were never written for; the generic rules know what trafilatura keeps
and a reader does not (catalogue label/value rows, "Posted on" lines, link lists) and
split the text into headed blocks. Measured on the article-extraction benchmark
(benchmarks/articles.py, docs/extraction.md): trafilatura alone 0.962 F1, the rules
alone 0.805, the vote below above either.

The vote: when each text is at least half inside the other (word 4-grams), both found
the same article, and the rules' blocks are kept (headings, metadata taken out), less
the paragraphs trafilatura left out (a caption, a teaser, a "read more" the container
held), except list items a sentence ending in ":" introduces. Otherwise the rules picked
the wrong part of the page (a sidebar, one of two containers, nothing), and
trafilatura's text is the body.
"""

from __future__ import annotations

import re
from collections import Counter

import trafilatura

from .content import MIN_PARAGRAPH, Block

# fast=True: trafilatura's own algorithm without its readability/justext fallbacks,
# a third of the cost of the default, and more accurate on the benchmark (0.962 against
# 0.953). Comments are not the article.
OPTIONS = {"fast": True, "include_comments": False, "include_tables": True}
# Both texts at least this much inside each other: the same article.
_SAME_ARTICLE = 0.5
_SHINGLE = 4
_WORD = re.compile(r"\w+")
# trafilatura's plain text marks list items "- "; a reader sees the item's text.
_ITEM = re.compile(r"^- ")


def main_text(html: str, url: str) -> list[str]:
    """trafilatura's paragraphs of the page's article, [] when it finds none."""
    text = trafilatura.extract(html, url=url, **OPTIONS) or ""
    return [line for raw in text.split("\n") if (line := _ITEM.sub("", raw.strip()))]


def vote(ours: list[Block], theirs: list[str]) -> list[Block]:
    """The body: the rules' blocks when both found the same article, else trafilatura's paragraphs."""
    their_text = "\n".join(theirs)
    if not ours:
        # A menu's "Home" is all trafilatura's fallback finds on a page without text.
        return [Block(p, heading=False) for p in theirs] if len(their_text) >= MIN_PARAGRAPH else []
    if not theirs:
        return ours
    our_text = "\n".join(b.text for b in ours)
    if min(_contained(our_text, their_text), _contained(their_text, our_text)) < _SAME_ARTICLE:
        return [Block(p, heading=False) for p in theirs]
    words = " ".join(_words(their_text))
    kept: list[Block] = []
    introduced = False
    for block in ours:
        mine = _words(block.text)
        if block.heading or " ".join(mine) in words:
            kept.append(block)
            introduced = block.text.endswith(":")
        elif introduced or (len(mine) < _SHINGLE and not kept):
            # Items after "... in the region:" (trafilatura drops some plain lists), and a
            # kicker above the headline, too short for a 4-gram to say whether it is text.
            kept.append(block)
    return kept


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _shingles(text: str) -> Counter[tuple[str, ...]]:
    words = _words(text)
    if not words:
        return Counter()
    return Counter(tuple(words[i:i + _SHINGLE]) for i in range(max(1, len(words) - _SHINGLE + 1)))


def _contained(part: str, whole: str) -> float:
    """Share of `part`'s word 4-grams that are in `whole` (counted with multiplicity)."""
    mine = _shingles(part)
    if not (size := sum(mine.values())):
        return 0.0
    other = _shingles(whole)
    return sum(min(n, other[s]) for s, n in mine.items()) / size
