"""What passes from fetch to index: one typed record per outcome, and the bulk actions it becomes.

A fetch task makes one `Staged` record per page (a document with its raw page,
a failure, a page that went), stages it in Redis as JSON, and the index task
reads it back with `Staged.from_json` and writes `to_actions()`. Nobody else
builds bulk actions for these indices' documents or guesses an entry's keys.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

import orjson

from workers.documents import PDF_SOURCE, ReportDocument
from workers.tracking.progress import FAILED, GONE, INDEXED, SKIPPED
from workers.tracking.state import UrlState
from workers.raw_pages import STALE_PARTS, raw_actions
from workers.redaction import redact_text, redact_url
from workers.urls import doc_id

if TYPE_CHECKING:
    from workers.crawl.http import Page
    from workers.index.indices import IndexNames

# A failure's detail is cut to this many characters: it is for humans, and must fit a keyword.
DETAIL_CHARS = 2000
# A failure record refused as it is (a URL too long for a keyword) is written again with its URL cut.
MINIMAL_URL_CHARS = 2000


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Failure:
    """A document of the failures index: what failed, where, why, and when.

    `source` (None for an ad-hoc crawl) lets `retry-failed` crawl the page again
    under its source's policy long after the crawl's own options expired.
    """

    url: str
    stage: str
    reason: str
    detail: str
    status: int | None = None
    attempts: int = 1
    crawl_id: str | None = None
    source: str | None = None
    failed_at: str = field(default_factory=now_iso)

    def __post_init__(self) -> None:
        # A failure record is shown and kept apart from the page: no credential of a signed URL in it.
        self.url, self.detail = redact_url(self.url), redact_text(self.detail)[:DETAIL_CHARS]

    def to_source(self) -> dict:
        record = asdict(self)
        # Left out when None: a failures index made before the field existed has a strict
        # mapping without it, which refuses the field even as null.
        if record["source"] is None:
            del record["source"]
        return record

    @classmethod
    def from_source(cls, record: dict) -> Failure:
        return cls(**record)

    def to_json(self) -> str:
        return orjson.dumps(self.to_source()).decode()

    @classmethod
    def from_json(cls, text: str) -> Failure:
        return cls.from_source(orjson.loads(text))

    def minimal(self, why: str) -> Failure:
        """The same failure with its URL cut short, for when the full record was refused."""
        return Failure(
            self.url[:MINIMAL_URL_CHARS], self.stage, self.reason,
            f"the full failure record was refused ({why[:300]}); URL of {len(self.url)} characters "
            f"cut short. {self.detail}", self.status, self.attempts, self.crawl_id, self.source, self.failed_at,
        )


@dataclass
class RawPage:
    """A fetched page byte for byte (base64: staged as text, stored by Elasticsearch as `binary`),
    so a rebuild can parse it again without the network."""

    url: str
    final_url: str
    status: int
    content_type: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: str
    content_sha256: str
    content_length: int
    body: str
    canonical_url: str | None = None
    source: str | None = None  # the site parser that read it, once one has

    @classmethod
    def of(cls, page: Page) -> RawPage:
        return cls(page.url, page.final_url, page.status, page.content_type, page.etag, page.last_modified,
                   page.fetched_at, page.sha256, len(page.body), base64.b64encode(page.body).decode("ascii"))

    @property
    def content(self) -> bytes:
        return base64.b64decode(self.body)

    @property
    def version(self) -> int:
        """The external version of what this fetch writes: its time, in microseconds."""
        return fetch_version(self.fetched_at)

    def to_actions(self, index: str, key: str) -> list[dict]:
        # A PDF may have been stored in more parts last time; the extra ones go.
        return raw_actions(index, key, vars(self), max_parts=STALE_PARTS if self.source == PDF_SOURCE else 0,
                           version=self.version)


def fetch_version(fetched_at: str) -> int:
    """A fetch time (ISO 8601) as an Elasticsearch external version: microseconds since the epoch."""
    return int(datetime.fromisoformat(fetched_at).timestamp() * 1_000_000)


@dataclass
class Staged:
    """One page's outcome on its way to the index. `key` is the hash of the requested URL: the
    `_id` of its raw page and failure record, and its field in the staging hash."""

    KIND: ClassVar[str] = ""
    OUTCOME: ClassVar[str] = ""

    url: str
    crawl_id: str | None
    source: str | None  # the crawl's source; None for an ad-hoc crawl
    # Given by a fetch, whose page has it already (workers/urls.py `PageURL`), else worked out here
    # once. Not staged: it is the entry's field in the staging hash.
    key: str = field(default="", kw_only=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = doc_id(self.url)

    def to_json(self) -> bytes:
        # orjson writes the nested records (RawPage, Failure) itself: no asdict copy of the page.
        return orjson.dumps({"kind": self.KIND, **self._staged_fields()})

    def _staged_fields(self) -> dict:
        return {name: value for name, value in vars(self).items() if name != "key"}

    @staticmethod
    def from_json(key: str, text: str | bytes) -> Staged:
        """The record staged under `key`; one that cannot be read becomes a failure, so it is seen."""
        try:
            data = orjson.loads(text)
            kind = _KINDS[data.pop("kind")]
            return kind.from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            url = f"staged:{key}"
            return FailureEntry(url, None, None, Failure(
                url, "index", "staging_corrupt", f"unreadable staged entry ({exc!r}): {text[:200]!r}"))

    @classmethod
    def from_dict(cls, data: dict) -> Staged:
        return cls(**data)

    def to_actions(self, names: IndexNames, shadow: str | None) -> list[dict]:
        """The bulk actions that write this outcome; `shadow` is a rebuild's target, if one runs."""
        raise NotImplementedError

    def refused(self, reason: str) -> Failure:
        """What to record when Elasticsearch refused this entry's writes for good."""
        return Failure(self.url, "index", "index_error", reason, crawl_id=self.crawl_id, source=self.source)

    def outcome(self) -> str:
        """The crawl progress state of this URL once the entry is written."""
        return self.OUTCOME

    def remembered(self, state: UrlState, now: float) -> UrlState | None:
        """What the crawl keeps about the URL once this outcome is in the index
        (workers/tracking/state.py), from `state`, what it kept before; None: nothing changes."""
        return None


@dataclass
class DocumentEntry(Staged):
    """A page that became a report document (or several: a full report's country chapters)."""

    KIND: ClassVar[str] = "document"
    OUTCOME: ClassVar[str] = INDEXED

    documents: list[ReportDocument] = field(default_factory=list)
    raw: RawPage | None = None
    recheck: tuple[float, float] = (86400.0, 30 * 86400.0)
    # Documents this URL made before and makes no more (a PDF chapter that went): deleted.
    dropped: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> DocumentEntry:
        return cls(**{**data, "raw": RawPage(**data["raw"]), "recheck": tuple(data["recheck"]),
                      "documents": [ReportDocument.from_source(d) for d in data["documents"]]})

    def _staged_fields(self) -> dict:
        # Staged in their source form, as before the type: an entry an older worker staged reads
        # back here, and one staged here reads back in an index worker not yet upgraded.
        return {**super()._staged_fields(), "documents": [d.to_source() for d in self.documents]}

    @property
    def document_ids(self) -> list[str]:
        return [d.id for d in self.documents]

    def remembered(self, state: UrlState, now: float) -> UrlState:
        # Validators and content hash only now that the content is in the index, so a failed
        # write can never make the page look unchanged.
        return state.indexed(now, self.recheck, content_sha256=self.raw.content_sha256,
                             document_ids=self.document_ids, etag=self.raw.etag,
                             last_modified=self.raw.last_modified)

    def to_actions(self, names: IndexNames, shadow: str | None) -> list[dict]:
        reports = [index for index in (names.reports, shadow) if index]
        actions = self.raw.to_actions(names.raw_pages, self.key)
        # Versioned by fetch time: a late older fetch never overwrites a newer one (bulk.py).
        sources = [(document.id, document.to_source()) for document in self.documents]
        actions += [{"_op_type": "index", "_index": index, "_id": document_id, "_source": source,
                     "_version": self.raw.version} for document_id, source in sources for index in reports]
        actions += [{"_op_type": "delete", "_index": index, "_id": gone}
                    for gone in self.dropped for index in reports]
        # A page that now works is no longer a failure.
        actions.append({"_op_type": "delete", "_index": names.failures, "_id": self.key})
        return actions


@dataclass
class FailureEntry(Staged):
    """A page that could not become a document (with its raw page when it was fetched), or one
    robots.txt forbids (`skipped`)."""

    KIND: ClassVar[str] = "failure"

    failure: Failure | None = None
    raw: RawPage | None = None
    skipped: bool = False

    def outcome(self) -> str:
        return SKIPPED if self.skipped else FAILED

    @classmethod
    def from_dict(cls, data: dict) -> FailureEntry:
        raw = data.pop("raw", None)
        return cls(**{**data, "failure": Failure(**data["failure"]), "raw": RawPage(**raw) if raw else None})

    def to_actions(self, names: IndexNames, shadow: str | None) -> list[dict]:
        actions = self.raw.to_actions(names.raw_pages, self.key) if self.raw is not None else []
        actions.append({"_op_type": "index", "_index": names.failures, "_id": self.key,
                        "_source": self.failure.to_source()})
        return actions

    def refused(self, reason: str) -> Failure:
        # The failure record itself was refused: keep its own reason, in a form that fits.
        return self.failure.minimal(reason)


@dataclass
class GoneEntry(Staged):
    """A page that answered 404/410 on a recheck: its reports deleted, or flagged `gone`."""

    KIND: ClassVar[str] = "gone"
    OUTCOME: ClassVar[str] = GONE

    document_ids: list[str] = field(default_factory=list)
    on_gone: str = "delete"
    recheck: tuple[float, float] = (86400.0, 30 * 86400.0)

    @classmethod
    def from_dict(cls, data: dict) -> GoneEntry:
        return cls(**{**data, "recheck": tuple(data["recheck"])})

    def remembered(self, state: UrlState, now: float) -> UrlState:
        return state.gone(now, self.recheck)

    def to_actions(self, names: IndexNames, shadow: str | None) -> list[dict]:
        """Its reports deleted or flagged, its raw page marked.

        The mark is a partial update, so the body stays for the day the page comes
        back (its next good fetch rewrites the raw page whole, mark and all); a
        page with no raw page has nothing a rebuild could bring back. A rebuild in
        progress (`shadow`) gets the delete at once, but not the flag: its target
        may not hold the report yet, and its catch-up re-reads the marked raw page
        anyway (workers/rebuild/chunks.py).
        """
        flag = self.on_gone == "flag"
        mark = {"gone": True, "on_gone": "flag" if flag else "delete",
                "gone_document_id": self.document_ids}
        actions = [{"_op_type": "update", "_index": names.raw_pages, "_id": self.key, "_source": {"doc": mark},
                    "_missing_ok": True}]
        for document_id in self.document_ids:
            if flag:
                actions.append({"_op_type": "update", "_index": names.reports, "_id": document_id,
                                "_source": {"doc": {"gone": True}}})
            else:
                actions += [{"_op_type": "delete", "_index": index, "_id": document_id}
                            for index in (names.reports, shadow) if index]
        return actions


_KINDS: dict[str, type[Staged]] = {kind.KIND: kind for kind in (DocumentEntry, FailureEntry, GoneEntry)}
