"""`report-ingest search` and `conflicts`: reading the reports index."""

from __future__ import annotations

import json

import click

from workers.cli.context import es_and_names, reader_and_names
from workers.cli.style import Style


@click.command()
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
@click.option("--export", "export_format", type=click.Choice(["csv", "jsonl"]),
              help="Write every hit (all pages, in report key order) with citation columns to --output.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="The file --export writes.")
def search(query: str, country, tier, year, year_from, year_to, publisher, role, exploitation,
           sort: str, page: int, per_page: int, all_copies: bool, as_json: bool, export_format: str | None,
           output: str | None) -> None:
    """Full-text search with facet filters; prints hits and facet counts."""
    from workers.search.faceted import Filters, run_search
    from workers.settings import get_settings

    filters = Filters(list(country), list(tier), list(year), year_from, year_to,
                      list(publisher), list(role), list(exploitation))
    es, names = reader_and_names()
    window = get_settings().search_max_window
    if export_format:
        if not output:
            raise click.UsageError("--export needs --output FILE")
        _export(es, names.reports, query, filters, all_copies, export_format, output, window)
        return
    result = run_search(es, names.reports, query, filters, page=page, per_page=per_page, sort=sort,
                        all_copies=all_copies, window=window)
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    style = Style.for_stdout()
    click.echo(f"{result['total']} {'copies' if all_copies else 'reports'}")
    for hit in result["hits"]:
        click.echo(f"\n{style.strong(hit.get('title') or '')}  [{hit.get('tier') or '-'}] score {hit['score'] or 0:.2f}"
                   f"\n  {hit.get('url')}")
        fragments = list(dict.fromkeys(f for frags in hit["highlight"].values() for f in frags))
        if fragments:
            click.echo("  ... " + " ... ".join(style.highlight(f) for f in fragments[:2]).replace("\n", " "))
        for copy in hit["copies"]:
            click.echo(f"  also at: {copy['url']}")
    for facet, counts in result["facets"].items():
        if counts:
            click.echo(f"\n{facet}: " + ", ".join(f"{k} ({v})" for k, v in counts.items()))


def _export(es, index: str, query: str, filters, all_copies: bool, fmt: str, output: str, window: int) -> None:
    from workers.progress_line import ProgressPrinter, rate_and_eta
    from workers.search.export import MAX_PAGE, Writer, export, walk
    from workers.search.faceted import run_search, search_body

    total = run_search(es, index, query, filters, per_page=1, all_copies=all_copies, window=window)["total"]
    unit = "copies" if all_copies else "reports"
    printer = ProgressPrinter(lambda line: click.echo(line, err=True))

    def progress(done: int, total: int, elapsed: float, final: bool) -> None:
        printer(f"exported {done}/{total} {unit} | {rate_and_eta(done, total, elapsed, unit)}", final)

    rows = walk(es, index, search_body(es, index, query, filters, all_copies=all_copies), all_copies=all_copies,
                page=min(MAX_PAGE, window))
    with open(output, "w", encoding="utf-8", newline="") as out:
        written = export(rows, Writer(out, fmt), total, progress)
    click.echo(f"wrote {written} {unit} to {output} ({fmt})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the conflicts as JSON.")
def conflicts(as_json: bool) -> None:
    """Reports whose copies disagree on tier or year, with the URL of each copy."""
    from workers.search.conflicts import find_conflicts

    es, names = es_and_names()
    found = find_conflicts(es, names.reports)
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    for conflict in found:
        click.echo(f"{conflict['report_key']}  {conflict['field']}:")
        for value, urls in conflict["values"].items():
            click.echo(f"  {value}: " + ", ".join(urls))
    click.echo(f"{len(found)} reports whose copies disagree" if found else "no copies disagree")
