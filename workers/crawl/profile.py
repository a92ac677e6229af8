"""How one crawl behaves: network policy, politeness, parser, recheck bounds.

A crawl is either a configured source (deploy/sources.yaml) or an ad-hoc
`report-ingest crawl`. Its options are stored in Redis under the crawl ID when
it starts, so tasks take only the URL and the crawl ID.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from workers.crawl.netpolicy import PRIVATE_NETWORKS, NetworkPolicy, networks_policy
from workers.clients import get_redis, per_process
from workers.settings import Settings, get_settings
from workers.crawl.sources import Source, load_sources
from workers.tracking.options import CrawlOptions


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


def sources(settings: Settings) -> dict[str, Source]:
    """The configured sources, as the file says now."""
    return load_sources(settings.sources_file)


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


def load_options(client: redis.Redis, settings: Settings, crawl_id: str | None) -> CrawlOptions:
    """The options a crawl was started with (the ad-hoc defaults for no crawl, or one long expired)."""
    return CrawlOptions.load(client, settings.index_prefix, crawl_id) or CrawlOptions()


def profile_of(settings: Settings, options: CrawlOptions, configured: dict[str, Source]) -> CrawlProfile:
    """The profile for a crawl's options; raises KeyError when its source is no longer configured."""
    if options.source:
        return source_profile(configured[options.source], options.force)
    return adhoc_profile(settings, allowed_networks(options), options.force)


def load_profile(client: redis.Redis, settings: Settings, crawl_id: str | None) -> CrawlProfile:
    """The profile a crawl was started with; a crawl-less task gets the ad-hoc defaults."""
    options = load_options(client, settings, crawl_id)
    return profile_of(settings, options, sources(settings) if options.source else {})


class Profiles:
    """Crawl profiles as a worker process needs them, one per task: a crawl's options never
    change once it started, so each is read from Redis once, and the sources file is read
    again only when it changes. Built once per process (`profiles()`)."""

    OPTIONS_KEPT = 256

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis, self.settings = client, settings
        self._options: OrderedDict[str, CrawlOptions] = OrderedDict()
        self._sources: tuple[float, dict[str, Source]] | None = None
        self._lock = threading.Lock()  # shared by the threads of a threads-pool worker

    def profile(self, crawl_id: str | None) -> CrawlProfile:
        options = self._options_of(crawl_id)
        return profile_of(self.settings, options, self._configured() if options.source else {})

    def _options_of(self, crawl_id: str | None) -> CrawlOptions:
        with self._lock:
            if crawl_id in self._options:
                self._options.move_to_end(crawl_id)
                return self._options[crawl_id]
        options = CrawlOptions.load(self.redis, self.settings.index_prefix, crawl_id)
        if options is None:  # an expired crawl may yet be started again under its ID: not kept
            return CrawlOptions()
        with self._lock:
            self._options[crawl_id] = options
            while len(self._options) > self.OPTIONS_KEPT:
                self._options.popitem(last=False)
        return options

    def _configured(self) -> dict[str, Source]:
        mtime = self.settings.sources_file.stat().st_mtime
        if self._sources is None or self._sources[0] != mtime:
            self._sources = (mtime, load_sources(self.settings.sources_file))
        return self._sources[1]


@per_process
def profiles() -> Profiles:
    return Profiles(get_redis(), get_settings())


def allowed_networks(options: CrawlOptions) -> list[str]:
    """The CIDRs an ad-hoc crawl opened (crawls stored before `allow_networks` had a flag)."""
    return list(options.allow_networks) or (list(PRIVATE_CIDRS) if options.legacy_private_networks else [])
