"""`report-ingest crawl`, registered on the main group in workers.cli.

It imports what enqueueing needs and no more (no parsers, no Elasticsearch client):
its start-up is on the clock of every crawl a user starts by hand.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO

import click

from workers.cli.errors import fail
from workers.clients import get_redis
from workers.crawl.netpolicy import parse_network
from workers.crawl.profile import PRIVATE_CIDRS, adhoc_profile
from workers.crawl.progress import FAILED, GONE, INDEXED, SKIPPED, UNCHANGED, CrawlTracker, watch
from workers.crawl.start import CrawlPlan, start_crawl
from workers.progress_line import ProgressPrinter, rate
from workers.settings import get_settings


def follow_crawl(crawl_id: str, timeout: float | None) -> None:
    """Live progress until the crawl drains, then a summary; exit 1 if it did not drain."""
    tracker = CrawlTracker(get_redis(), get_settings().index_prefix, crawl_id)
    snap = watch(tracker, timeout=timeout, echo=lambda m: click.echo(m, err=True))
    c = snap.counts
    click.echo(
        f"crawl {crawl_id}: {snap.total} URLs, {c[INDEXED]} indexed, {c[FAILED]} failed, "
        f"{c[UNCHANGED]} unchanged, {c[SKIPPED]} skipped, {c[GONE]} gone, "
        f"{snap.total - snap.done} unfinished, in {snap.elapsed:.1f}s ({snap.rate:.1f} pages/s)"
    )
    if c[FAILED]:
        click.echo("see `report-ingest failures`; retry with `report-ingest retry-failed`")
    if snap.done < snap.total:
        sys.exit(1)


class CIDR(click.ParamType):
    """A network a crawl may open; never a link-local or cloud metadata one."""

    name = "cidr"

    def convert(self, value, param, ctx) -> str:
        try:
            return str(parse_network(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def url_lines(file: IO[str]) -> Iterator[str]:
    """The URLs of a list, one a line, read as they are needed; blank lines and # comments skipped."""
    for line in file:
        if (text := line.strip()) and not text.startswith("#"):
            yield text


@click.command()
@click.argument("urls", nargs=-1)
@click.option("--sitemap", "sitemaps", multiple=True, help="Also crawl every page listed in this sitemap.")
@click.option("--from-file", "url_file", type=click.File("r"), default=None, metavar="FILE",
              help="Also crawl the URLs listed in FILE, one a line (- for standard input), read as they are "
                   "enqueued: a list of any length costs the memory of a thousand URLs.")
@click.option("--wait/--no-wait", default=True, help="Follow progress until the crawl drains.")
@click.option("--timeout", type=float, default=None, help="Stop following after this many seconds.")
@click.option("--allow-network", "networks", type=CIDR(), multiple=True, metavar="CIDR",
              help="Also fetch addresses in this non-public network, e.g. 127.0.0.1/32 for a local site "
                   "(repeatable). Link-local and cloud metadata addresses are never fetched.")
@click.option("--allow-private-networks", is_flag=True,
              help="Deprecated: --allow-network for every loopback, RFC 1918 and unique-local IPv6 network.")
@click.option("--force", is_flag=True, help="Fetch and index again even if a page looks unchanged.")
def crawl(urls: tuple[str, ...], sitemaps: tuple[str, ...], url_file: IO[str] | None, wait: bool,
          timeout: float | None, networks: tuple[str, ...], allow_private_networks: bool, force: bool) -> None:
    """Fetch, parse and index report pages.

    Every argument that is not an http(s) URL, and every sitemap or sitemap entry
    that cannot be used, gets an error line; the rest is crawled, and the exit
    status is then 1.
    """
    allow = list(networks)
    if allow_private_networks:
        click.echo(f"note: --allow-private-networks is deprecated; it opens {' '.join(PRIVATE_CIDRS)}. "
                   "Name what the crawl needs with --allow-network CIDR.", err=True)
        allow += [cidr for cidr in PRIVATE_CIDRS if cidr not in allow]
    settings = get_settings()
    targets: list[Iterable[str]] = [urls]
    errors: list[str] = []
    if sitemaps:
        # Only here: reading sitemaps takes the fetch and parse stack, 0.3 s to import.
        from workers.crawl.discover import sitemap_urls
    walks = [sitemap_urls(settings, adhoc_profile(settings, allow), sitemap) for sitemap in sitemaps]
    targets += walks  # read as they are enqueued
    if url_file is not None:
        targets.append(url_lines(url_file))
    elif not urls and not sitemaps:
        fail("nothing to crawl: give URLs, --sitemap or --from-file")
    started, show = time.monotonic(), ProgressPrinter(lambda line: click.echo(line, err=True))

    def enqueued(plan: CrawlPlan, final: bool = False) -> None:
        show(f"crawl {plan.crawl_id}: queued {plan.queued} URLs ({plan.duplicates} duplicates dropped, "
             f"{plan.invalid_count} invalid) | {rate(plan.queued, time.monotonic() - started):.0f} URLs/s", final)

    plan = start_crawl(settings, itertools.chain.from_iterable(targets), allow_networks=allow, force=force,
                       progress=enqueued)
    for walk in walks:
        click.echo(f"sitemap {walk.start}: {walk.found} URLs", err=True)
        errors += walk.errors
        if walk.errors_left_out:
            errors.append(f"sitemap {walk.start}: ... and {walk.errors_left_out} more errors")
    for error in errors:
        click.echo(f"error: {error}", err=True)
    for reason in plan.invalid:
        click.echo(f"error: {reason}", err=True)
    if plan.invalid_count > len(plan.invalid):
        click.echo(f"error: ... and {plan.invalid_count - len(plan.invalid)} more invalid URLs", err=True)
    if not plan.queued and not plan.duplicates:
        fail("nothing to crawl: none of the arguments is an http(s) URL")
    enqueued(plan, final=True)
    if wait and plan.queued:
        follow_crawl(plan.crawl_id, timeout)
    if errors or plan.invalid_count:
        sys.exit(1)
