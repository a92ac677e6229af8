"""A crawl's options: what it was started with, stored under its ID for its tasks.

Tasks take only a URL and a crawl ID; the options tell them the crawl's source (its policy,
rate and parser) or, for an ad-hoc crawl, the non-public networks it may reach, and whether it
is forced (validators and content hashes ignored). They live as long as the crawl has URLs to
finish, and CRAWL_TTL after (workers/tracking/progress.py gives them their end of life).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from workers.keys import Keys


@dataclass(frozen=True)
class CrawlOptions:
    source: str | None = None
    allow_networks: tuple[str, ...] = ()
    force: bool = False
    # Crawls stored before `allow_networks` had only this flag: every private network
    # (workers/crawl/profile.py `allowed_networks` says which). Read, kept, never set anew.
    legacy_private_networks: bool = False

    def to_json(self) -> str:
        fields = {"source": self.source, "allow_networks": list(self.allow_networks), "force": self.force}
        if self.legacy_private_networks:
            fields["allow_private_networks"] = True
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> CrawlOptions:
        fields = json.loads(text)
        return cls(fields.get("source"), tuple(fields.get("allow_networks") or ()), bool(fields.get("force")),
                   bool(fields.get("allow_private_networks")))

    def save(self, client: redis.Redis, namespace: str, crawl_id: str, ttl: int) -> None:
        client.set(Keys(namespace).crawl_options(crawl_id), self.to_json(), ex=ttl)

    @classmethod
    def load(cls, client: redis.Redis, namespace: str, crawl_id: str | None) -> CrawlOptions | None:
        """The options a crawl was started with; None for no crawl, or one long expired."""
        text = client.get(Keys(namespace).crawl_options(crawl_id)) if crawl_id else None
        return cls.from_json(text) if text else None
