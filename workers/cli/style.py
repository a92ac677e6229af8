"""Emphasis on a terminal, plain text elsewhere: search highlights and word-level diffs.

On a terminal (stdout a tty, NO_COLOR unset) emphasis is bold or colour (ANSI); piped or
redirected output gets none, so scripts and files never see escape codes or Elasticsearch's
raw `<em>` tags. A deletion and an insertion in plain text are `[-old-]{+new+}`, as
`git diff --word-diff=plain` writes them.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

_BOLD, _RED, _GREEN, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[32m", "\x1b[0m"
_STRIKE = "\x1b[9m"
# Elasticsearch's default highlight tags.
_EM = re.compile(r"<em>(.*?)</em>", re.S)


@dataclass(frozen=True)
class Style:
    tty: bool

    @classmethod
    def for_stdout(cls) -> Style:
        return cls(sys.stdout.isatty() and "NO_COLOR" not in os.environ)

    def strong(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.tty else text

    def highlight(self, fragment: str) -> str:
        """A highlighted fragment with its matches emphasised, never as raw tags."""
        return _EM.sub(lambda m: self.strong(m.group(1)), fragment)

    def red(self, text: str) -> str:
        return f"{_RED}{text}{_RESET}" if self.tty else text

    def green(self, text: str) -> str:
        return f"{_GREEN}{text}{_RESET}" if self.tty else text

    def deleted(self, text: str) -> str:
        return f"{_RED}{_STRIKE}{text}{_RESET}" if self.tty else f"[-{text}-]"

    def inserted(self, text: str) -> str:
        return self.green(text) if self.tty else f"{{+{text}+}}"

    def word_diff(self, runs: list[tuple[str, str]]) -> str:
        show = {"equal": str, "delete": self.deleted, "insert": self.inserted}
        return "".join(show[op](text) for op, text in runs)
