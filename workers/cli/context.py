"""What most commands reach: an Elasticsearch client and the index names of this deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.index.indices import IndexNames
from workers.settings import get_settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from workers.es_read import ReadClient


def index_names() -> IndexNames:
    return IndexNames(get_settings().index_prefix)


def es_and_names() -> tuple[Elasticsearch, IndexNames]:
    """The full client, for commands that write or use its helpers."""
    from workers.clients import get_es

    return get_es(), index_names()


def reader_and_names() -> tuple[ReadClient, IndexNames]:
    """The small read-only client (workers/es_read.py), for commands that answer at once."""
    from workers.es_read import read_client

    return read_client(get_settings()), index_names()
