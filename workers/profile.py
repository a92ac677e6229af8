"""How one crawl behaves: network policy, politeness, parser, recheck bounds.

A crawl is either a configured source (deploy/sources.yaml) or an ad-hoc
`report-ingest crawl`. Its options are stored in Redis under the crawl ID when
it starts, so tasks take only the URL and the crawl ID.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import redis

from workers.netpolicy import PRIVATE_NETWORKS, NetworkPolicy, networks_policy
from workers.settings import Settings
from workers.sources import Source, load_sources


@dataclass(frozen=True)
class CrawlProfile:
    source: str | None
    parser: str | None  # None: choose by page
    rate: float  # requests per second per host
    concurrency: int  # simultaneous requests per host
    policy: NetworkPolicy
    on_gone: str
    recheck_min: float
    recheck_max: float
    force: bool = False  # ignore validators and content hashes: fetch and index again


@lru_cache(maxsize=4)
def _sources(path: str, mtime: float) -> dict[str, Source]:
    return load_sources(Path(path))


def sources(settings: Settings) -> dict[str, Source]:
    """The configured sources, re-read when the file changes."""
    path = settings.sources_file
    return _sources(str(path), path.stat().st_mtime)


def source_profile(source: Source, force: bool = False) -> CrawlProfile:
    return CrawlProfile(
        source=source.name, parser=None if source.parser == "auto" else source.parser,
        rate=source.rate, concurrency=source.concurrency,
        policy=NetworkPolicy(frozenset(source.allowed_hosts), source.private_networks),
        on_gone=source.on_gone, recheck_min=source.recheck_min_seconds,
        recheck_max=source.recheck_max_seconds, force=force,
    )


# What the deprecated `--allow-private-networks` stands for, as CIDRs to store with a crawl.
PRIVATE_CIDRS = tuple(str(network) for network in PRIVATE_NETWORKS)


def adhoc_profile(settings: Settings, allow_networks: Sequence[str] = (), force: bool = False) -> CrawlProfile:
    """A `report-ingest crawl`: any host, public addresses and the non-public networks named."""
    return CrawlProfile(
        source=None, parser=None, rate=settings.default_host_rate,
        concurrency=settings.default_host_concurrency,
        policy=networks_policy(allow_networks),
        on_gone="delete", recheck_min=settings.recheck_min, recheck_max=settings.recheck_max, force=force,
    )


def _key(settings: Settings, crawl_id: str) -> str:
    return f"ri:{settings.index_prefix}crawl:{crawl_id}:options"


def save_options(client: redis.Redis, settings: Settings, crawl_id: str, options: dict, ttl: int) -> None:
    client.set(_key(settings, crawl_id), json.dumps(options), ex=ttl)


def load_options(client: redis.Redis, settings: Settings, crawl_id: str | None) -> dict:
    """The options a crawl was started with ({} for no crawl, or one long expired)."""
    if not crawl_id:
        return {}
    key = _key(settings, crawl_id)
    # A crawl's options never change once it started, so each process reads them once.
    if (options := _seen_options.get(key)) is None:
        raw = client.get(key)
        options = json.loads(raw) if raw else {}
        if raw:
            _seen_options[key] = options
            while len(_seen_options) > 256:
                _seen_options.pop(next(iter(_seen_options)))
    return options


_seen_options: dict[str, dict] = {}


def load_profile(client: redis.Redis, settings: Settings, crawl_id: str | None) -> CrawlProfile:
    """The profile a crawl was started with; a crawl-less task gets the ad-hoc defaults."""
    options = load_options(client, settings, crawl_id)
    force = bool(options.get("force"))
    if name := options.get("source"):
        return source_profile(sources(settings)[name], force)
    return adhoc_profile(settings, allowed_networks(options), force)


def allowed_networks(options: dict) -> list[str]:
    """The CIDRs an ad-hoc crawl opened (crawls stored before `allow_networks` had a flag)."""
    return options.get("allow_networks") or (list(PRIVATE_CIDRS) if options.get("allow_private_networks") else [])
