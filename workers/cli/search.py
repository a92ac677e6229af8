"""`report-ingest search` and `conflicts`: reading the reports index."""

from __future__ import annotations

import json

import click

from workers.cli.context import es_and_names
from workers.search import Filters, run_search
from workers.search.conflicts import find_conflicts
from workers.settings import get_settings


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
def search(query: str, country, tier, year, year_from, year_to, publisher, role, exploitation,
           sort: str, page: int, per_page: int, all_copies: bool, as_json: bool) -> None:
    """Full-text search with facet filters; prints hits and facet counts."""
    filters = Filters(list(country), list(tier), list(year), year_from, year_to,
                      list(publisher), list(role), list(exploitation))
    es, names = es_and_names()
    result = run_search(es, names.reports, query, filters, page=page, per_page=per_page, sort=sort,
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the conflicts as JSON.")
def conflicts(as_json: bool) -> None:
    """Reports whose copies disagree on tier or year, with the URL of each copy."""
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
