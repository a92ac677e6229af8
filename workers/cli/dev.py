"""`report-ingest services` and `demo`: local Redis and Elasticsearch, and the offline demo.

Both live in `devtools`, which ships with a checkout of the repository but not in the
worker image; it is imported when one of these commands runs, so every other command
works without it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import click

from workers.cli.errors import fail


def _devtools(module: str) -> ModuleType:
    try:
        return importlib.import_module(f"devtools.{module}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("devtools", f"devtools.{module}"):
            raise
        fail("this command needs the `devtools` package (local services and the demo), which comes with a "
             "checkout of the repository and not with the worker image: run it from a checkout (pip install -e .)")


@click.command()
@click.argument("action", type=click.Choice(["up", "down", "status"]))
def services(action: str) -> None:
    """Start, stop or show local Redis and Elasticsearch (no Docker needed)."""
    devservices = _devtools("services")
    try:
        click.echo(getattr(devservices, action)(echo=lambda m: click.echo(m, err=True)))
    except devservices.ServiceError as exc:
        fail(str(exc))


@click.command()
@click.option("--port", default=8765, show_default=True,
              help="Port of the local demo site (the `demo` source in deploy/sources.yaml points here).")
@click.option("--concurrency", default=2, show_default=True, help="Worker processes.")
def demo(port: int, concurrency: int) -> None:
    """Offline demo: local Redis and Elasticsearch, a worker, and a crawl of the bundled sample site."""
    from workers.cli.context import es_and_names
    from workers.cli.crawl import follow_crawl
    from workers.crawl.discover import run_source
    from workers.index.indices import ensure_indices
    from workers.settings import get_settings

    devservices, demo_site = _devtools("services"), _devtools("demo")
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    settings = get_settings()
    try:
        click.echo(devservices.up(echo=echo), err=True)
    except devservices.ServiceError as exc:
        fail(str(exc))
    ensure_indices(*es_and_names(), settings.schemas_dir)
    log = devservices.cache_dir() / "run" / "demo-worker.log"
    worker_process = demo_site.start_worker(concurrency, log)
    server = demo_site.serve_demo_site(port)
    try:
        demo_site.wait_for_worker(worker_process, echo=echo)
        echo(f"demo site on http://127.0.0.1:{port} (worker log: {log})")
        found, plan = run_source(settings, "demo", force=True, echo=echo)
        echo(f"demo: {len(found.urls)} report pages in the sitemap")
        follow_crawl(plan.crawl_id, timeout=600)
    finally:
        server.shutdown()
        demo_site.stop_worker(worker_process)
    click.echo("\ntry: report-ingest search \"forced labor\" --tier \"Tier 3\"   |   report-ingest status")
