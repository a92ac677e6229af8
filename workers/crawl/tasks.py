"""The crawl's Celery tasks: fetch a page (or a batch of them) politely, parse it, stage what came of it.

Tasks take URLs and IDs, never objects, and are idempotent: a document's `_id`
is a hash of its canonical URL, a raw page's and a failure's the hash of the
requested URL, so running a task twice overwrites the same records.

Every way a task ends leaves a document, a failure record, or a message that
will be delivered again (workers/delivery.py): errors become failure records,
connection losses and errors while recording become redeliveries, and a page
that keeps killing its worker is recorded as poison.

A large crawl sends its URLs in batches of one host's URLs (fetch_pages). A batch
is a way to pay for one message instead of several, nothing more: each page of it
ends as it would have on its own, and a retry sends the page again as a fetch_page.
A busy host defers the page it was asked for and the rest of the batch together.
A batch delivered a second time (its worker died on it) is split into one
fetch_page per URL, so that a page that kills its worker is found and recorded as
poison on its own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

from celery import Task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded

from workers.app import app
from workers.backoff import backoff_seconds
from workers.clients import get_redis
from workers.crawl.http import PdfLimits, PermanentFetchError, RetryableFetchError
from workers.crawl.parked import Parked, ParkedPage
from workers.crawl.polite import Deferred, Disallowed, polite_fetch
from workers.crawl.profile import CrawlProfile, profiles
from workers.tracking.progress import FETCHED, UNCHANGED, CrawlTracker
from workers.tracking.state import CrawlState, UrlState
from workers.documents import ReportDocument
from workers.delivery import CONNECTION_ERRORS, SUSPECTS, Delivery, redelivered_unless_recorded
from workers.index.staging import Staging, stage
from workers.parse import parse_documents, parse_failure
from workers.records import DocumentEntry, Failure, FailureEntry, GoneEntry, RawPage, Staged
from workers.settings import Settings, get_settings
from workers.task_names import FETCH_PAGE, FETCH_PAGES
from workers.timings import StageTimings
from workers.urls import InvalidURL, PageURL, pages_of

log = logging.getLogger(__name__)


# Deferrals for the host's sake, or the whole crawl's, not the page's: a batch's other pages wait with it.
HOST_DEFERRALS = frozenset({"host_busy", "host_slot", "staging_full"})
# Deferrals parked whatever their length: a fetch waiting for indexing to catch up must not sit in a
# worker as a countdown (Celery holds those without limit), nor loop through the queue.
PARKED_DEFERRALS = frozenset({"staging_full"})


def defer(settings: Settings, urls: list[str], crawl_id: str | None, deferred: Deferred, **kwargs: int) -> None:
    """Fetch `urls` again in `deferred.seconds`: one broker message with a countdown when short,
    each parked in Redis when long."""
    seconds = deferred.seconds
    if seconds > settings.max_countdown or deferred.reason in PARKED_DEFERRALS:
        parked = Parked(get_redis(), settings.index_prefix)
        for url in urls:
            parked.park(ParkedPage(url, crawl_id, **kwargs), seconds)
    elif len(urls) == 1:
        fetch_page.apply_async((urls[0], crawl_id), kwargs, countdown=seconds)
    else:
        fetch_pages.apply_async((urls, crawl_id), countdown=seconds)


class PageRun:
    """One page of a delivery (of fetch_page, or one of fetch_pages): the page (its URL normalised
    and hashed once, for every key of it) and its crawl, which attempt this is, and how it records
    what came of it."""

    def __init__(self, task: Task, settings: Settings, page: PageURL, crawl_id: str | None,
                 delivery: Delivery | None = None):
        self.task, self.settings, self.page, self.crawl_id = task, settings, page, crawl_id
        self.profile: CrawlProfile | None = None
        # A batch is always a page's first attempt: its retries go out as fetch_page.
        self.batched = task.name == FETCH_PAGES
        self.attempt = 0 if self.batched else task.request.retries
        # The delivery counted on the page's count (a fetch_page's); a batch's page holds no count,
        # and leaves the batch's alone.
        self.delivery = delivery

    def within_cap(self, unless_suspect: bool = False) -> bool | None:
        """Count this delivery of the page, whichever message carries it (a fetch sent again by
        the reconciliation, a deferral, a retry); False once MAX_DELIVERIES are on the count.
        `unless_suspect`: None, uncounted, if the page was in flight when a worker died
        (workers/delivery.py)."""
        return self.delivery.count_page(get_redis(), self.crawl_id, self.page, unless_suspect=unless_suspect)

    def let_go(self) -> None:
        """This delivery ends with the page sent on (deferred, or retried): it is off the count."""
        if self.delivery is not None:
            self.delivery.leave(get_redis())

    def retry(self, countdown: float, exc: Exception) -> str:
        """Fetch the page again in `countdown` seconds, as its next attempt."""
        self.let_go()
        if not self.batched:
            raise self.task.retry(countdown=countdown, exc=exc, max_retries=self.settings.fetch_max_retries)
        log.info("%s: attempt %d in %.1fs: %s", self.url, self.attempt + 2, countdown, exc)
        fetch_page.apply_async((self.url, self.crawl_id), countdown=countdown, retries=self.attempt + 1)
        return "retrying"

    @property
    def url(self) -> str:
        return self.page.url

    @property
    def source(self) -> str | None:
        return self.profile.source if self.profile else None

    @property
    def recheck(self) -> tuple[float, float]:
        return self.profile.recheck_min, self.profile.recheck_max

    def entry(self, kind: type[Staged], *args, **kwargs) -> Staged:
        """What came of the page, of `kind`, staged under the page's hash."""
        return kind(self.url, self.crawl_id, self.source, *args, key=self.page.key, **kwargs)

    def stage(self, entry: Staged, progress: str | None = None) -> None:
        """Stage what came of the page; the delivery finished, and leaves the count in the same step."""
        stage(self.settings, entry, progress, self.delivery and self.delivery.key)
        if self.delivery is not None:
            self.delivery.left()

    def failure(self, stage: str, reason: str, detail: str, status: int | None = None) -> Failure:
        return Failure(self.url, stage, reason, detail, status=status, attempts=self.attempt + 1,
                       crawl_id=self.crawl_id, source=self.source)

    def fail(self, stage: str, reason: str, detail: str, *, status: int | None = None,
             raw: RawPage | None = None) -> str:
        self.stage(self.entry(FailureEntry, self.failure(stage, reason, detail, status), raw))
        return f"failed:{reason}"

    def finish(self, state: str) -> str:
        """The page reached `state` with nothing to stage; the delivery leaves the count."""
        pipe = get_redis().pipeline(transaction=False)
        if self.crawl_id:
            CrawlTracker(get_redis(), self.settings.index_prefix, self.crawl_id).mark(self.url, state, pipe)
        if self.delivery is not None:
            self.delivery.uncount(pipe)
        pipe.execute()
        if self.delivery is not None:
            self.delivery.left()
        return state


@app.task(bind=True, name=FETCH_PAGE)
def fetch_page(self: Task, url: str, crawl_id: str | None = None, robots_deferrals: int = 0) -> str:
    """Fetch `url` politely, parse it, and stage the document, raw page or failure for indexing."""
    settings = get_settings()
    with redelivered_unless_recorded(self, settings) as delivery:
        return _page(self, settings, url, crawl_id, robots_deferrals, delivery=delivery)


@app.task(bind=True, name=FETCH_PAGES)
def fetch_pages(self: Task, urls: list[str], crawl_id: str | None = None) -> str:
    """fetch_page for each of `urls` in turn, for the price of one message."""
    settings = get_settings()
    with redelivered_unless_recorded(self, settings) as delivery:
        if not delivery.count_attempt(get_redis()):
            send_fetches(urls, crawl_id)
            return f"split:{len(urls)}"
        outcomes: Counter[str] = Counter()
        # Every page's crawl state in one round trip. A page fetched again meanwhile by another
        # task only looks changed here, and is indexed again: the same IDs, overwritten.
        pages = pages_of(urls)  # those that are not URLs fail in _page
        known = CrawlState(get_redis(), settings.index_prefix).get_pages(list(pages.values()))
        for i, url in enumerate(urls):
            try:
                outcomes[_page(self, settings, url, crawl_id, known=known, page=pages.get(url))] += 1
            except Deferred as exc:
                # The host is busy: the pages left are for it too, and wait for it together.
                defer(settings, urls[i:], crawl_id, exc)
                outcomes["deferred"] += len(urls) - i
                break
            except SoftTimeLimitExceeded:
                # The batch's time is up, not the page's: it and the rest go on, each on its own.
                send_fetches(urls[i:], crawl_id)
                outcomes["split"] += len(urls) - i
                break
        return " ".join(f"{outcome}:{n}" for outcome, n in sorted(outcomes.items()))


def send_fetches(urls: list[str], crawl_id: str | None) -> None:
    """One fetch_page per URL, through one producer.

    A batch whose worker died after it split (before its message was acknowledged) splits again
    on its next delivery, and sends each page twice: the page's delivery count is one for all
    its messages, so a page that kills its worker is still fetched at most MAX_DELIVERIES times.
    """
    with app.producer_or_acquire() as producer:
        for url in urls:
            fetch_page.apply_async((url, crawl_id), producer=producer)


def _page(task: Task, settings: Settings, url: str, crawl_id: str | None, robots_deferrals: int = 0, *,
          delivery: Delivery | None = None, known: Mapping[str, UrlState | None] = MappingProxyType({}),
          page: PageURL | None = None) -> str:
    """One page, from its URL to what it was staged as. `delivery`: the page's own (a fetch_page's),
    counted on the page's count, which ends as `poison` past the cap; None for a batch's page.
    `known`: crawl states already read, by URL; `page`: the URL made a page already (a batch's)."""
    try:
        page = page or PageURL.of(url)
    except InvalidURL as exc:
        # Recorded under the text it came as, which has no canonical form.
        return PageRun(task, settings, PageURL(url), crawl_id, delivery).fail("fetch", "invalid_url", str(exc))
    run = PageRun(task, settings, page, crawl_id, delivery)
    if delivery is None:
        return _attempt(run, robots_deferrals, known)
    if (within := run.within_cap(unless_suspect=True)) is None:
        # In flight when a worker died: alone among such pages in this process, so that the
        # next death is charged to the page that causes it (workers/delivery.py).
        if not SUSPECTS.acquire(timeout=settings.host_max_inline_wait):
            wait = settings.host_max_inline_wait
            defer(settings, [page.url], crawl_id, Deferred(wait, "suspects_busy", "pages in flight at a death"),
                  **({"robots_deferrals": robots_deferrals} if robots_deferrals else {}))
            return "deferred"
        try:
            return _capped(run, run.within_cap(), robots_deferrals, known)
        finally:
            SUSPECTS.release()
    return _capped(run, within, robots_deferrals, known)


def _capped(run: PageRun, within: bool, robots_deferrals: int, known: Mapping[str, UrlState | None]) -> str:
    if not within:
        return run.fail("fetch", "poison", f"delivered {run.settings.max_deliveries} times without finishing "
                                           "(its worker was lost, or it hit the hard time limit)")
    return _attempt(run, robots_deferrals, known)


def _attempt(run: PageRun, robots_deferrals: int, known: Mapping[str, UrlState | None]) -> str:
    url = run.url
    try:
        return _crawl(run, robots_deferrals, known)
    except (Retry, Reject, Deferred, *CONNECTION_ERRORS):  # Deferred: only a batch's, for fetch_pages
        raise
    except SoftTimeLimitExceeded:
        if run.batched:
            raise
        return run.fail("fetch", "time_limit", f"{url}: task time limit exceeded")
    except Exception as exc:  # noqa: BLE001 - a bug must cost one page, recorded, not the crawl
        log.exception("unexpected error fetching %s", url)
        return run.fail("fetch", "unexpected_error", f"{exc.__class__.__name__}: {exc}")


def _profile(run: PageRun) -> CrawlProfile | str:
    """The crawl's profile, or why there is none (its source was removed, or the file is broken)."""
    try:
        return profiles().profile(run.crawl_id)
    except KeyError as exc:
        return f"crawl {run.crawl_id}: its source {exc} is no longer in {run.settings.sources_file}"
    except (ValueError, OSError) as exc:  # SourcesError is a ValueError
        return f"crawl {run.crawl_id}: cannot read {run.settings.sources_file}: {exc}"


def _crawl(run: PageRun, robots_deferrals: int, known: Mapping[str, UrlState | None]) -> str:
    settings, url = run.settings, run.url
    profile = _profile(run)
    if isinstance(profile, str):
        return run.fail("fetch", "source_unavailable", profile)
    run.profile = profile
    timings = StageTimings(get_redis(), settings.index_prefix)
    state = CrawlState(get_redis(), settings.index_prefix, min_interval=profile.recheck_min,
                       max_interval=profile.recheck_max)
    previous = None if profile.force else known[url] if url in known else state.get_pages([run.page])[url]
    try:
        _room_to_stage(settings)
        with timings.measure("fetch"):
            page = polite_fetch(profile, run.page, etag=previous and previous.etag,
                                last_modified=previous and previous.last_modified,
                                pdf=PdfLimits(settings.max_pdf_bytes, settings.pdf_read_timeout))
    except Deferred as exc:
        # Not a retry: the page did nothing wrong, its host is just busy or its rules unknown.
        if run.batched and exc.reason in HOST_DEFERRALS:
            raise  # for fetch_pages, which defers the rest of the batch with it
        if exc.reason == "robots_unreachable":
            if robots_deferrals >= settings.robots_max_deferrals:
                return run.fail("robots", "robots_unreachable",
                                f"{exc} (still unreachable after {robots_deferrals} deferrals)")
            robots_deferrals += 1
        defer(settings, [url], run.crawl_id, exc, **({"robots_deferrals": robots_deferrals} if robots_deferrals else {}))
        run.let_go()
        return "deferred"
    except Disallowed as exc:
        run.stage(run.entry(FailureEntry, run.failure("robots", "robots_disallowed", str(exc)), skipped=True))
        return "skipped"
    except RetryableFetchError as exc:
        if run.attempt < settings.fetch_max_retries:
            return run.retry(backoff_seconds(run.attempt, settings.fetch_backoff_base, settings.fetch_backoff_max,
                                             exc.retry_after), exc)
        return run.fail("fetch", exc.reason, f"gave up after {run.attempt + 1} attempts: {exc}", status=exc.status)
    except PermanentFetchError as exc:
        if exc.status in (404, 410) and previous is not None and previous.document_ids:
            run.stage(run.entry(GoneEntry, previous.document_ids, profile.on_gone, run.recheck))
            return "gone"
        return run.fail("fetch", exc.reason, str(exc), status=exc.status)

    if page.status == 304 or (previous is not None and previous.content_sha256 == page.sha256):
        state.record_unchanged(run.page)
        return run.finish(UNCHANGED)

    raw = RawPage.of(page)
    # The fetch normalised every hop: a redirect's last is a page as it is.
    final = run.page if page.final_url == url else PageURL(page.final_url)
    try:
        with timings.measure("parse"):
            documents = parse_documents(page.body, final, page.content_type, parser=profile.parser)
    except (SoftTimeLimitExceeded, *CONNECTION_ERRORS):
        raise
    except Exception as exc:  # noqa: BLE001 - as above
        # The raw page is kept all the same: a better parser can read it later.
        return run.fail("parse", *parse_failure(exc, url), status=page.status, raw=raw)
    first = documents[0]
    # A PDF's chapters point into it (#page=N); its raw page is the PDF itself.
    raw.canonical_url, raw.source = first.container_url or first.canonical_url, first.source
    documents = [document.indexable(page.fetched_at) for document in documents]
    run.stage(run.entry(DocumentEntry, documents, raw, run.recheck, dropped=_dropped(previous, documents)),
              progress=FETCHED)
    return FETCHED


def _room_to_stage(settings: Settings) -> None:
    """Backpressure: while the staged entries are over STAGING_MAX_BYTES (Elasticsearch down or slow),
    wait up to STAGING_WAIT for the index run to catch up, then defer the page (parked)."""
    if not Staging(get_redis(), settings.index_prefix).wait_for_room(settings.staging_max_bytes,
                                                                     settings.staging_wait):
        raise Deferred(max(settings.staging_wait, 1.0) * 2, "staging_full",
                       f"staged entries over STAGING_MAX_BYTES ({settings.staging_max_bytes} bytes): "
                       "waiting for indexing to catch up")


def _dropped(previous: UrlState | None, documents: list[ReportDocument]) -> list[str]:
    """Documents a PDF made last time and no more (a chapter that went): they are deleted.

    Only for documents the URL owns alone (chapters carry `container_url`); a page's one
    document may be shared with the other addresses of the same canonical page.
    """
    if previous is None or not all(d.container_url for d in documents):
        return []
    now = {d.id for d in documents}
    return [document_id for document_id in previous.document_ids if document_id not in now]
