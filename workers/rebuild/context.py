"""What every step of a rebuild works with: the clients, the settings, and the index names and
Redis keys they imply. Built once per coordinator or task and passed along."""

from __future__ import annotations

from dataclasses import dataclass, field

from elasticsearch import Elasticsearch
from redis import Redis

from workers.clients import get_es, get_redis
from workers.index.bulk import bulk_write
from workers.index.indices import IndexNames
from workers.keys import Keys
from workers.settings import Settings, get_settings


@dataclass(frozen=True)
class Context:
    es: Elasticsearch
    redis: Redis
    settings: Settings
    names: IndexNames = field(init=False)
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", IndexNames(self.settings.index_prefix))
        object.__setattr__(self, "keys", Keys(self.settings.index_prefix))

    @classmethod
    def current(cls) -> Context:
        """This process's clients and settings (a Celery task's)."""
        return cls(get_es(), get_redis(), get_settings())

    def bulk(self, actions: list[dict]) -> None:
        """Bulk-write with the configured chunk size and retries; raises BulkWriteError."""
        bulk_write(self.es, actions, chunk_size=self.settings.bulk_chunk_size,
                   max_retries=self.settings.bulk_max_retries)
