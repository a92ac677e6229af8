"""`report-ingest worker` and `beat`: the Celery processes, with this project's defaults."""

from __future__ import annotations

import click

from workers.app import app


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", "-Q", default="fetch,index,reindex", show_default=True)
@click.option("--concurrency", "-c", type=int, default=None, help="Processes (default: one per core).")
@click.option("--pool", default="prefork", show_default=True)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, concurrency: int | None, pool: str, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker on the fetch, index and reindex queues."""
    argv = ["worker", "-Q", queues, "--pool", pool, "-l", loglevel, *celery_args]
    if concurrency:
        argv += ["-c", str(concurrency)]
    app.worker_main(argv)


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run the Celery beat scheduler."""
    app.start(["beat", "-l", loglevel, *celery_args])
