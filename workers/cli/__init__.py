"""The `report-ingest` command: the group, and where each of its commands lives.

Commands live in modules by topic, which the group imports only when one of their commands
runs (COMMANDS). A command module imports at its top what all its commands need, and inside
a command what only that command (or one path of it) needs: running one command never loads
another's dependencies (the rebuild's Celery tasks for `indices`, the crawl for `failures`).
The read-only commands (`search`, `history`, `diff`, `tiers`, `status`) load neither Celery
nor the Elasticsearch client package, and answer within half a second, start-up included
(benchmarks/cli_startup.py; tests/test_editions.py runs them and keeps them so). The queries
behind the commands live in the modules that own the data, so a command only reads and formats.
"""

from __future__ import annotations

import importlib

import click

from workers.cli.errors import ServiceErrors, quiet_transport

# name -> (where the command is, what `--help` lists it as: the opening of its own help).
COMMANDS = {
    "setup": ("workers.cli.setup:setup", "Install index templates and create the indices and aliases."),
    "kibana-setup": ("workers.cli.setup:kibana_setup", "Import the Kibana data view, saved search and dashboard."),
    "services": ("workers.cli.dev:services", "Start, stop or show local Redis and Elasticsearch."),
    "demo": ("workers.cli.dev:demo", "Offline demo"),
    "worker": ("workers.cli.run:worker", "Run Celery workers on the fetch, index and reindex queues"),
    "beat": ("workers.cli.run:beat", "Run the Celery beat scheduler."),
    "sources": ("workers.cli.sources:sources", "Configured sources"),
    "crawl": ("workers.cli.crawl:crawl", "Fetch, parse and index report pages"),
    "failures": ("workers.cli.failures:failures", "Show the most recent failures."),
    "retry-failed": ("workers.cli.failures:retry_failed", "Crawl every recorded failure again"),
    "status": ("workers.cli.status:status", "Queue depths, staged entries, parked pages, live workers"),
    "search": ("workers.cli.search:search", "Full-text search with facet filters"),
    "conflicts": ("workers.cli.search:conflicts", "Reports whose copies disagree on tier or year"),
    "history": ("workers.cli.editions:history", "One row per edition of COUNTRY's report"),
    "diff": ("workers.cli.editions:diff", "What changed in COUNTRY's report between YEAR_A and YEAR_B"),
    "tiers": ("workers.cli.editions:tiers", "The country x year matrix of tiers"),
    "alerts": ("workers.cli.watches:alerts", "List the alerts watches raised"),
    "parse": ("workers.cli.parse:parse", "Parse one saved page and print its document as JSON."),
    "reindex": ("workers.cli.rebuild:reindex", "Rebuild the reports index from stored raw pages"),
    "indices": ("workers.cli.rebuild:indices", "List physical indices"),
}


class Commands(ServiceErrors):
    """Imports a command's module only when that command runs: all of them together pull in
    Celery, Elasticsearch and the parsers, which took `report-ingest parse` or `--help` from 0.4 s
    to 1.3 s to start. `--help` lists the commands from COMMANDS, importing none of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn published country reports into searchable, structured data."""
    quiet_transport(ctx.invoked_subcommand)
