"""What most commands reach: the Elasticsearch client and the index names of this deployment."""

from __future__ import annotations

from elasticsearch import Elasticsearch

from workers.clients import get_es
from workers.index.indices import IndexNames
from workers.settings import get_settings


def index_names() -> IndexNames:
    return IndexNames(get_settings().index_prefix)


def es_and_names() -> tuple[Elasticsearch, IndexNames]:
    return get_es(), index_names()
