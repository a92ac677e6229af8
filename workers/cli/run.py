"""`report-ingest worker` and `beat`: the Celery processes, with this project's defaults."""

from __future__ import annotations

import sys

import click

from workers.cli.layout import Layout, Supervisor, worker_argv


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--queues", "-Q", default="fetch,index,reindex", show_default=True)
@click.option("--concurrency", "-c", type=int, default=None,
              help="Run one worker with this many pool slots (prefork processes unless -P says otherwise).")
@click.option("--pool", "-P", default=None, help="Run one worker with this Celery pool (prefork, threads, solo).")
@click.option("--processes", type=int, default=None, help="Default layout: worker processes (one per core).")
@click.option("--threads", type=int, default=None, help="Default layout: threads per process (16).")
@click.option("--hostname", "-n", default=None, help="Node name (the default layout adds -1, -2, ... to it).")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(queues: str, concurrency: int | None, pool: str | None, processes: int | None, threads: int | None,
           hostname: str | None, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run Celery workers on the fetch, index and reindex queues.

    By default one worker per core, each with a threads pool (many requests in flight per
    process; see workers/cli/layout.py). -c or -P runs one worker exactly as asked instead.
    """
    if concurrency or pool:
        from workers.app import app  # not in the supervisor, which only starts and watches workers

        argv = ["worker", "-Q", queues, "--pool", pool or "prefork", "-l", loglevel, *celery_args]
        if concurrency:
            argv += ["-c", str(concurrency)]
        if hostname:
            argv += ["-n", hostname]
        app.worker_main(argv)
        return
    layout = Layout.for_machine(processes, threads)
    click.echo(layout.describe(queues), err=True)
    argvs = [worker_argv(layout, i + 1, queues, loglevel, hostname, celery_args) for i in range(layout.processes)]
    sys.exit(Supervisor(argvs, echo=lambda line: click.echo(line, err=True)).run())


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run the Celery beat scheduler."""
    from workers.app import app

    app.start(["beat", "-l", loglevel, *celery_args])
