"""The `report-ingest` command."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from workers.cli_crawl import crawl, failures, follow_crawl, retry_failed
from workers.cli_errors import ServiceErrors, fail, quiet_transport
from workers.settings import get_settings


def _es():
    from workers.clients import get_es

    return get_es()


def _names():
    from workers.index import IndexNames

    return IndexNames(get_settings().index_prefix)


@click.group(cls=ServiceErrors)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn published country reports into searchable, structured data."""
    quiet_transport(ctx.invoked_subcommand)


# --- setup and services ------------------------------------------------------------


@main.command()
@click.option("--wait", "wait_seconds", default=120.0, show_default=True, help="Seconds to wait for Elasticsearch.")
def setup(wait_seconds: float) -> None:
    """Install index templates and create the indices and aliases (idempotent)."""
    from workers.index import ensure_indices

    es, settings = _es(), get_settings()
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            es.cluster.health(wait_for_status="yellow", timeout="5s")
            break
        except Exception as exc:  # noqa: BLE001 - any failure here means "not ready yet"
            if time.monotonic() > deadline:
                fail(f"Elasticsearch at {settings.elasticsearch_url} not ready after {wait_seconds:.0f}s: {exc}")
            click.echo(f"waiting for Elasticsearch at {settings.elasticsearch_url} ...", err=True)
            time.sleep(2)
    live = ensure_indices(es, _names(), settings.schemas_dir)
    for kind, index in live.items():
        click.echo(f"{kind:10} -> {index}")


@main.command("kibana-setup")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for Kibana.")
def kibana_setup(timeout: float) -> None:
    """Import the Kibana data view, saved search and dashboard (idempotent)."""
    from workers.kibana import KibanaSetupError, setup_kibana

    try:
        summary = setup_kibana(get_settings(), timeout=timeout, echo=lambda m: click.echo(m, err=True))
    except KibanaSetupError as exc:
        fail(str(exc))
    click.echo(json.dumps(summary, indent=2))


@main.command()
@click.argument("action", type=click.Choice(["up", "down", "status"]))
def services(action: str) -> None:
    """Start, stop or show local Redis and Elasticsearch (no Docker needed)."""
    from workers import devservices

    try:
        click.echo(getattr(devservices, action)(echo=lambda m: click.echo(m, err=True)))
    except devservices.ServiceError as exc:
        fail(str(exc))


@main.command()
@click.option("--port", default=8765, show_default=True,
              help="Port of the local demo site (the `demo` source in deploy/sources.yaml points here).")
@click.option("--concurrency", default=2, show_default=True, help="Worker processes.")
def demo(port: int, concurrency: int) -> None:
    """Offline demo: local Redis and Elasticsearch, a worker, and a crawl of the bundled sample site."""
    from workers import demo as demo_site
    from workers import devservices
    from workers.index import ensure_indices

    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    settings = get_settings()
    try:
        click.echo(devservices.up(echo=echo), err=True)
    except devservices.ServiceError as exc:
        fail(str(exc))
    ensure_indices(_es(), _names(), settings.schemas_dir)
    log = devservices.cache_dir() / "run" / "demo-worker.log"
    worker_process = demo_site.start_worker(concurrency, log)
    server = demo_site.serve_demo_site(port)
    try:
        demo_site.wait_for_worker(worker_process, echo=echo)
        from workers.crawl import run_source

        echo(f"demo site on http://127.0.0.1:{port} (worker log: {log})")
        found, plan = run_source(settings, "demo", force=True, echo=echo)
        echo(f"demo: {len(found.urls)} report pages in the sitemap")
        follow_crawl(plan.crawl_id, timeout=600)
    finally:
        server.shutdown()
        demo_site.stop_worker(worker_process)
    click.echo("\ntry: report-ingest search \"forced labor\" --tier \"Tier 3\"   |   report-ingest status")


# --- Celery ------------------------------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", "-Q", default="fetch,index,reindex", show_default=True)
@click.option("--concurrency", "-c", type=int, default=None, help="Processes (default: one per core).")
@click.option("--pool", default="prefork", show_default=True)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, concurrency: int | None, pool: str, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on the fetch, index and reindex queues."""
    from workers.app import app

    argv = ["worker", "-Q", queues, "--pool", pool, "-l", loglevel, *celery_args]
    if concurrency:
        argv += ["-c", str(concurrency)]
    app.worker_main(argv)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run the Celery beat scheduler."""
    from workers.app import app

    app.start(["beat", "-l", loglevel, *celery_args])


# --- crawling ----------------------------------------------------------------------


@main.group()
def sources() -> None:
    """Configured sources (deploy/sources.yaml, or SOURCES_FILE)."""


def _load_sources():
    from workers.sources import SourcesError, load_sources

    try:
        return load_sources(get_settings().sources_file)
    except (SourcesError, OSError) as exc:
        fail(str(exc))


@sources.command("list")
def sources_list() -> None:
    """Show every source with its schedule and politeness settings."""
    for source in _load_sources().values():
        click.echo(f"{source.name:14} {source.schedule:16} parser={source.parser:9} rate={source.rate}/s "
                   f"concurrency={source.concurrency} hosts={','.join(source.allowed_hosts)}")
        for url in [*source.seeds, *source.sitemaps]:
            click.echo(f"{'':14} {url}")


@sources.command("validate")
def sources_validate() -> None:
    """Check the sources file; errors name the line and the field."""
    found = _load_sources()
    click.echo(f"{get_settings().sources_file}: {len(found)} sources OK ({', '.join(found)})")


@sources.command("run")
@click.argument("name")
@click.option("--wait/--no-wait", default=True)
@click.option("--timeout", type=float, default=None)
@click.option("--force", is_flag=True, help="Crawl every discovered URL, due or not, and index again.")
def sources_run(name: str, wait: bool, timeout: float | None, force: bool) -> None:
    """Discover and crawl one source now."""
    from workers.crawl import run_source

    if name not in _load_sources():
        fail(f"no source named {name!r}; see `report-ingest sources list`")
    found, plan = run_source(get_settings(), name, force=force, echo=lambda m: click.echo(m, err=True))
    for error in found.errors:
        click.echo(f"  {error}", err=True)
    click.echo(f"{name}: {len(found.urls)} report URLs from {found.listing_pages} listing pages and "
               f"{found.sitemaps} sitemaps; {len(plan.queued)} new or due", err=True)
    if wait and plan.queued:
        follow_crawl(plan.crawl_id, timeout)


@main.command()
def status() -> None:
    """Queue depths, documents per index, staged entries and recent failures."""
    from workers.app import FETCH_QUEUE, INDEX_QUEUE
    from workers.clients import get_redis
    from workers.crawl import recent_failures
    from workers.staging import Staging
    from workers.timings import StageTimings

    settings, redis, es, names = get_settings(), get_redis(), _es(), _names()
    # Everything is read before anything is printed: a service that is down gives one line, not half a report.
    lines = ["queues:"]
    for queue in (FETCH_QUEUE, INDEX_QUEUE):
        lines.append(f"  {queue:10} {redis.llen(queue)}")
    lines.append(f"  {'staged':10} {Staging(redis, settings.index_prefix).size()}")
    lines.append("indices:")
    for alias in (names.reports, names.raw_pages, names.failures):
        count = es.count(index=alias)["count"] if es.indices.exists_alias(name=alias) else "missing"
        lines.append(f"  {alias:20} {count}")
    stages = StageTimings(redis, settings.index_prefix).summary()
    if stages:
        lines.append("time per stage (all workers, since the counters were reset):")
        for stage, stats in sorted(stages.items()):
            lines.append(f"  {stage:10} {stats.get('items', 0):8.0f} items  {stats['ms_per_item']:8.2f} ms/item")
    recent = recent_failures(es, names, 5)
    lines.append("recent failures:" if recent else "recent failures: none")
    lines += [f"  {row['failed_at']} {row['reason']:16} {row['url']}" for row in recent]
    click.echo("\n".join(lines))


# --- reading -------------------------------------------------------------------------


@main.command()
@click.argument("query", default="")
@click.option("--country", multiple=True, help="ISO code (MM) or name (Burma); repeatable.")
@click.option("--tier", multiple=True)
@click.option("--year", type=int, multiple=True)
@click.option("--from", "year_from", type=int)
@click.option("--to", "year_to", type=int)
@click.option("--publisher", multiple=True)
@click.option("--role", multiple=True, type=click.Choice(["source", "transit", "destination"]))
@click.option("--exploitation", multiple=True)
@click.option("--sort", type=click.Choice(["relevance", "date", "oldest", "tier"]), default="relevance")
@click.option("--page", type=click.IntRange(min=1), default=1)
@click.option("--per-page", type=click.IntRange(min=1, max=1000), default=10)
@click.option("--all-copies", is_flag=True,
              help="Every copy of a report as its own hit (default: one hit per report, copies under it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def search(query: str, country, tier, year, year_from, year_to, publisher, role, exploitation,
           sort: str, page: int, per_page: int, all_copies: bool, as_json: bool) -> None:
    """Full-text search with facet filters; prints hits and facet counts."""
    from workers.search import Filters, run_search

    filters = Filters(list(country), list(tier), list(year), year_from, year_to,
                      list(publisher), list(role), list(exploitation))
    result = run_search(_es(), _names().reports, query, filters, page=page, per_page=per_page, sort=sort,
                        all_copies=all_copies, window=get_settings().search_max_window)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    click.echo(f"{result['total']} {'copies' if all_copies else 'reports'}")
    for hit in result["hits"]:
        click.echo(f"\n{hit.get('title')}  [{hit.get('tier') or '-'}] score {hit['score'] or 0:.2f}\n  {hit.get('url')}")
        fragments = list(dict.fromkeys(f for frags in hit["highlight"].values() for f in frags))
        if fragments:
            click.echo("  ... " + " ... ".join(fragments[:2]).replace("\n", " "))
        for copy in hit["copies"]:
            click.echo(f"  also at: {copy['url']}")
    for facet, counts in result["facets"].items():
        if counts:
            click.echo(f"\n{facet}: " + ", ".join(f"{k} ({v})" for k, v in counts.items()))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the conflicts as JSON.")
def conflicts(as_json: bool) -> None:
    """Reports whose copies disagree on tier or year, with the URL of each copy."""
    from workers.conflicts import find_conflicts

    found = find_conflicts(_es(), _names().reports)
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for conflict in found:
        click.echo(f"{conflict['report_key']}  {conflict['field']}:")
        for value, urls in conflict["values"].items():
            click.echo(f"  {value}: " + ", ".join(urls))
    click.echo(f"{len(found)} reports whose copies disagree" if found else "no copies disagree")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", required=True, help="The URL the page was served from.")
@click.option("--content-type", default=None, help="The HTTP Content-Type, if known.")
def parse(file: Path, url: str, content_type: str | None) -> None:
    """Parse one saved page and print its document as JSON."""
    from workers.parse import ParseError, parse_page

    try:
        body = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        document = parse_page(body, url, content_type)
    except ParseError as exc:
        fail(str(exc))
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


from workers.cli_reindex import indices, reindex  # noqa: E402 - registered last, kept in its own module

for command in (crawl, failures, retry_failed, reindex, indices):
    main.add_command(command)

if __name__ == "__main__":
    main()
