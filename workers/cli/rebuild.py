"""`report-ingest reindex` and `report-ingest indices`, registered on the main group in workers.cli."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime

import click

from workers.clients import get_es, get_redis
from workers.settings import get_settings


@click.command()
@click.option("--reparse", "mode", flag_value="reparse", default=True,
              help="Run the current parser over the stored raw pages (default).")
@click.option("--copy", "mode", flag_value="copy", help="Copy the live documents as they are into a new index.")
@click.option("--source", default=None, help="Re-parse only raw pages read by this parser; copy the rest.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Re-parse only raw pages fetched since then (UTC); copy the rest.")
@click.option("--keep-old", is_flag=True, help="Keep the previous index instead of deleting it.")
@click.option("--allow-shrink", is_flag=True,
              help="Swap even if the new index lacks live documents the rebuild cannot explain "
                   "(by default it refuses, and says which).")
@click.option("--resume", is_flag=True, help="Continue an interrupted rebuild instead of starting over.")
@click.option("--chunks", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Slices of the ID keyspace, one Celery task each.")
@click.option("--detach", is_flag=True, help="Run the whole rebuild as a Celery task and return at once.")
@click.option("--lock-ttl", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds a crashed rebuild keeps blocking the next one (and its dual writes on); "
                   "a rebuild that cannot renew its lock within this stops.")
@click.option("--lock-wait", type=click.FloatRange(min=0), default=None,
              help="Seconds to wait for another rebuild's lock [default: 1.5 x --lock-ttl].")
def reindex(mode: str, source: str | None, since: datetime | None, keep_old: bool, allow_shrink: bool,
            resume: bool, chunks: int, detach: bool, lock_ttl: float, lock_wait: float | None) -> None:
    """Rebuild the reports index from stored raw pages, swapping the alias with zero downtime.

    Progress goes to stderr, the summary to stdout. If the rebuild stops, the
    old index keeps serving; `--resume` continues it, a plain re-run starts over.
    """
    from workers.rebuild.coordinator import rebuild
    from workers.rebuild.errors import RebuildError
    from workers.rebuild.state import COPY, Selection
    from workers.rebuild.tasks import rebuild_index

    if mode == COPY and (source or since):
        raise click.UsageError("--source and --since select pages to re-parse; they do not go with --copy")
    since_text = since.isoformat() if since else None
    if detach:
        result = rebuild_index.apply_async(kwargs={
            "mode": mode, "source": source, "since": since_text, "chunks": chunks, "keep_old": keep_old,
            "resume": resume, "allow_shrink": allow_shrink, "lock_ttl": lock_ttl, "lock_wait": lock_wait,
        })
        click.echo(f"rebuild queued as task {result.id}; follow it with `report-ingest indices`")
        return

    try:
        summary = rebuild(
            get_es(), get_redis(), get_settings(), mode=mode, selection=Selection(source, since_text),
            chunks=chunks, keep_old=keep_old, resume=resume, allow_shrink=allow_shrink, lock_ttl=lock_ttl,
            lock_wait=lock_wait, echo=lambda m: click.echo(m, err=True),
        )
    except RebuildError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    old = "deleted" if summary.old_deleted else "kept"
    click.echo(
        f"reindex {summary.run_id} ({summary.mode}): {summary.documents} documents live in "
        f"{summary.live} | {summary.read} read, {summary.caught_up} caught up from the crawl, "
        f"{summary.failures} parse failures, {summary.gone} gone pages left out | "
        f"{summary.elapsed}s ({summary.docs_per_second} docs/s) "
        f"| previous index {summary.old} {old}"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def indices(as_json: bool) -> None:
    """List physical indices: documents, which is live, schema and parser versions."""
    from workers.index.aliases import list_indices
    from workers.index.indices import IndexNames
    from workers.keys import Keys

    prefix = get_settings().index_prefix
    rows = list_indices(get_es(), IndexNames(prefix), rebuilding=get_redis().get(Keys(prefix).rebuild_shadow))
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    click.echo(f"{'':2}{'index':50} {'docs':>8}  {'schema':6} {'parser':8} {'analysis':9} documents by parser")
    for r in rows:
        mark = "*" if r.live else ("+" if r.rebuilding else " ")
        versions = ", ".join(f"{v} ({n})" for v, n in r.doc_parser_versions.items()) or "-"
        click.echo(f"{mark} {r.index:50} {r.documents:>8}  v{r.schema_version or '?':<5} "
                   f"{r.parser_version or '-':8} {r.analysis or '-':9} {versions if r.kind == 'reports' else ''}")
    click.echo("* live (behind its alias)   + being rebuilt")
