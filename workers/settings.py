"""One typed settings object, read from the environment (and `.env`), with local defaults.

A frozen dataclass read by a few lines of code rather than pydantic-settings: importing pydantic
and building a settings model took 0.2 s, which every command paid before doing anything (the
read-only ones answer within half a second in all: benchmarks/cli_startup.py). A variable is the
field's name in any case (`REDIS_URL`); the environment wins over `.env`; a value that does not
convert or breaks a bound is a SettingsError naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from workers.es_nodes import elasticsearch_nodes
from workers.sentinel import Sentinels

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting that does not convert to its type or is out of its bounds."""


@dataclass(frozen=True)
class Secret:
    """A value that never shows in a repr, a log line or a traceback."""

    value: str = dataclasses.field(repr=False)

    def get_secret_value(self) -> str:
        return self.value

    def __str__(self) -> str:
        return "**********"


def Field(default: Any, *, gt: float | None = None, ge: float | None = None) -> Any:  # noqa: N802 - reads like a type's field
    """A field with a lower bound: `gt` exclusive, `ge` inclusive."""
    return dataclasses.field(default=default, metadata={"gt": gt, "ge": ge})


_TRUE, _FALSE = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def _bool(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise ValueError(f"not a boolean: {text!r}")


# ELASTICSEARCH_REPLICAS: "auto", or a number of replicas.
Replicas = str | int


def _replicas(text: str) -> Replicas:
    if text == "auto":
        return text
    if not text.isdigit():
        raise ValueError(f"{text!r} is neither auto nor a number of replicas (0 or more)")
    return int(text)


# Each annotation the fields use (as a string: `from __future__ import annotations`) -> its parser.
# An optional field given an empty value is unset.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str, "int": int, "float": float, "bool": _bool, "Path": Path, "Secret": Secret, "Replicas": _replicas,
}


def _parse(annotation: str, text: str) -> Any:
    kind, optional = annotation.removesuffix(" | None"), annotation.endswith(" | None")
    if kind not in _PARSERS:
        raise TypeError(f"no reader for settings of type {annotation!r}: add one to _PARSERS")
    if optional and not text:
        return None
    return _PARSERS[kind](text)


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines, as docker compose reads them: `#` comments, optional `export `, quotes stripped."""
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[name] = value
    return found


@dataclass(frozen=True)
class Settings:

    redis_url: str = "redis://localhost:6379/0"
    # Seconds to connect to Redis and to wait for an answer: a Redis that accepts connections but
    # never answers fails a command (and the task is delivered again) instead of hanging it.
    redis_timeout: float = Field(default=10.0, gt=0)
    # When REDIS_URL names Sentinels (sentinel://host:26379;sentinel://host2:26379, workers/sentinel.py):
    # the name of the master they watch, their own password if they have one, and TLS to all of them.
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: Secret | None = None
    redis_sentinel_tls: bool = False
    redis_ca_certs: Path | None = None

    # One node's URL, or several separated by commas (workers/es_nodes.py).
    elasticsearch_url: str = "http://localhost:9200"
    # Replicas of every index: "auto" keeps one where the cluster has a second data node to hold
    # it and none on a single node (Elasticsearch's auto_expand_replicas 0-1), or a fixed number.
    # `setup` applies it to the templates and to the live indices (a worker, to the indices it creates).
    elasticsearch_replicas: Replicas = "auto"
    elasticsearch_api_key: Secret | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: Secret | None = None
    elasticsearch_ca_certs: Path | None = None
    # Verification stays on unless someone turns it off on purpose, in writing.
    elasticsearch_verify_certs: bool = True
    elasticsearch_timeout: float = 30.0

    kibana_url: str = "http://localhost:5601"

    index_prefix: str = ""
    schemas_dir: Path = REPO_ROOT / "schemas"

    user_agent: str = "report-ingest/0.1 (+https://github.com/report-ingest/report-ingest)"
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_page_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    # PDFs (full reports run to 30 MB) have their own cap, and this much longer to arrive.
    max_pdf_bytes: int = Field(default=60 * 1024 * 1024, gt=0)
    pdf_read_timeout: float = Field(default=120.0, gt=0)
    # Text extraction stops past this many pages, or this long, so a hostile PDF cannot hold a
    # worker until its hard time limit (a full TIP report has about 600 pages, read in seconds).
    pdf_max_pages: int = Field(default=3000, ge=1)
    pdf_parse_seconds: float = Field(default=60.0, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    # Fetch retries on connection errors, 5xx and 429, then the page lands in failures.
    fetch_max_retries: int = Field(default=4, ge=0)
    fetch_backoff_base: float = Field(default=2.0, gt=0)
    fetch_backoff_max: float = Field(default=300.0, gt=0)
    # Redeliveries of one task after a worker died on it, before the page counts as poison.
    max_deliveries: int = Field(default=3, ge=1)
    # How long the broker waits for an acknowledgement before delivering a task again. A
    # backstop only: workers give back a dead worker's tasks within ORPHAN_GRACE seconds.
    visibility_timeout: int = Field(default=3600, ge=60)
    # How often each worker publishes what it holds and sweeps (parked pages, orphaned
    # tasks, a lost index trigger), and how long a task may look orphaned before it is requeued.
    housekeeping_interval: float = Field(default=2.0, gt=0)
    orphan_grace: float = Field(default=30.0, gt=0)

    sources_file: Path = REPO_ROOT / "deploy" / "sources.yaml"
    # Politeness for ad-hoc crawls (`report-ingest crawl`); sources set their own.
    default_host_rate: float = Field(default=2.0, gt=0)
    default_host_concurrency: int = Field(default=2, ge=1)
    robots_ttl: int = Field(default=3600, ge=1)
    # An unreachable robots.txt (5xx, 429, timeout) is asked again after this long; its pages wait.
    robots_error_ttl: int = Field(default=300, ge=1)
    # A host's Retry-After holds back all its pages at most this long (what it asked for is
    # recorded beside): a date years ahead must not stall the host for good.
    host_backoff_max: float = Field(default=6 * 3600.0, gt=0)
    # A page waits in its worker slot for its host's next request slot at most this long ...
    host_max_inline_wait: float = Field(default=30.0, ge=0)
    # ... and is re-enqueued with a broker countdown at most this far ahead; longer waits
    # are parked in Redis, never held by the broker past its visibility timeout.
    max_countdown: float = Field(default=60.0, gt=0)
    # Deferrals while robots.txt is unreachable before the page is recorded as a failure.
    robots_max_deferrals: int = Field(default=12, ge=1)
    # A crawl of many URLs sends up to this many in one fetch message, which its worker fetches
    # one after the other: Celery's hand-over costs about as much CPU as parsing a page.
    fetch_batch_max: int = Field(default=8, ge=1)
    recheck_min: float = Field(default=86400.0, gt=0)
    recheck_max: float = Field(default=30 * 86400.0, gt=0)
    # What the crawler knows of a URL lives this long after its last fetch (and at least three of
    # its recheck intervals): a URL that no source lists and no crawl asks for any more is forgotten.
    url_state_ttl: float = Field(default=90 * 86400.0, gt=0)

    bulk_chunk_size: int = Field(default=200, gt=0)
    # Bulk requests stay well under Elasticsearch's http.max_content_length (100 MB).
    bulk_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    bulk_max_retries: int = Field(default=3, ge=0)
    # While Elasticsearch is unreachable or overloaded, the index run retries at most this far apart
    # (the longest indexing may lag behind the cluster's recovery).
    index_backoff_max: float = Field(default=60.0, gt=0)
    index_batch_size: int = Field(default=500, gt=0)
    # ... and at most this many bytes of staged entries (one entry over it goes alone): the index
    # worker holds a batch in memory, and a staged PDF is about 3x the PDF.
    index_batch_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Backpressure: while the staged entries weigh more than this (Elasticsearch down or slow),
    # fetches wait for indexing to catch up, up to STAGING_WAIT seconds in their worker slot, then
    # parked (never dropped). Keep it well under Redis's maxmemory (README: sizing Redis).
    staging_max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    staging_wait: float = Field(default=30.0, ge=0)
    # Hits reachable with from/size: the reports index's index.max_result_window. `search`
    # pages beyond it with search_after.
    search_max_window: int = Field(default=10_000, gt=0)
    # Earlier versions of a page kept when its content changes, so a narrative revised in place
    # can be diffed (`report-ingest diff URL`); 0 keeps none.
    revisions_kept: int = Field(default=3, ge=0)

    # Watches (workers/watches/config.py): none without a file.
    watches_file: Path | None = None
    # A webhook that fails is tried again, forever, at most this far apart: an alert is never dropped.
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_backoff_base: float = Field(default=2.0, gt=0)
    webhook_backoff_max: float = Field(default=600.0, gt=0)
    # An alert still pending this long after its delivery was due (its task lost with a worker) is
    # sent again by housekeeping, which looks for such alerts at most every ALERTS_SWEEP_INTERVAL
    # seconds across all workers. A delivery that is retrying pushes its due time on at each try.
    alerts_redeliver_after: float = Field(default=300.0, gt=0)
    alerts_sweep_interval: float = Field(default=30.0, gt=0)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value, bounds = getattr(self, field.name), field.metadata
            if bounds.get("gt") is not None and not value > bounds["gt"]:
                raise SettingsError(f"{field.name.upper()} must be greater than {bounds['gt']}, not {value}")
            if bounds.get("ge") is not None and not value >= bounds["ge"]:
                raise SettingsError(f"{field.name.upper()} must be at least {bounds['ge']}, not {value}")
        if self.index_prefix != self.index_prefix.lower():
            raise SettingsError("INDEX_PREFIX: Elasticsearch index names must be lowercase")
        for name, check in (("REDIS_URL", lambda: Sentinels.parse(self.redis_url)),
                            ("ELASTICSEARCH_URL", lambda: elasticsearch_nodes(self.elasticsearch_url)),
                            ("ELASTICSEARCH_REPLICAS", lambda: _replicas(str(self.elasticsearch_replicas)))):
            try:
                check()
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str], env_file: Path | None = None) -> Settings:
        """The settings named in `environ`, else in `env_file`, else the defaults."""
        given = {name.lower(): value for source in (read_env_file(env_file) if env_file else {}, environ)
                 for name, value in source.items()}
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in given:
                try:
                    values[field.name] = _parse(str(field.type), given[field.name])
                except ValueError as exc:
                    raise SettingsError(f"{field.name.upper()}={given[field.name]!r}: {exc}") from None
        return cls(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env(os.environ, Path(".env"))
