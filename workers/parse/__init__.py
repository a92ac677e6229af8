"""Page bytes -> one structured report document.

    from workers.parse import parse_page, ParseError, PARSER_VERSION
    doc = parse_page(body, url, content_type)   # a ReportDocument (workers/documents.py)

Site parsers sit side by side behind one interface (base.SiteParser). Refworld and
State Department pages are recognised on their own hosts and, anywhere else (mirrors,
local test servers), by page structure; every other page goes to the generic parser.

The names below are loaded on first use (pages.py): importing one module of the package,
the country table (countries.py) for a search by country name, loads no parser, nor
BeautifulSoup and lxml under them (0.3 s of a command's start-up).
"""

from __future__ import annotations

import importlib

# name -> the module of the package that defines it
_LAZY = {"PARSER_VERSION": "document", "ParseError": "errors", "PARSERS": "pages", "parse_documents": "pages",
         "parse_failure": "pages", "parse_page": "pages"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
