"""The `report-ingest` command: the group, and where each of its commands lives.

Commands live in modules by topic and import what they need at the top; the
queries behind them live in the modules that own the data, so a command only
reads and formats.
"""

from __future__ import annotations

import importlib

import click

from workers.cli.errors import ServiceErrors, quiet_transport

COMMANDS = {
    "setup": "workers.cli.setup:setup",
    "kibana-setup": "workers.cli.setup:kibana_setup",
    "services": "workers.cli.dev:services",
    "demo": "workers.cli.dev:demo",
    "worker": "workers.cli.run:worker",
    "beat": "workers.cli.run:beat",
    "sources": "workers.cli.sources:sources",
    "crawl": "workers.cli.crawl:crawl",
    "failures": "workers.cli.failures:failures",
    "retry-failed": "workers.cli.failures:retry_failed",
    "status": "workers.cli.status:status",
    "search": "workers.cli.search:search",
    "conflicts": "workers.cli.search:conflicts",
    "history": "workers.cli.editions:history",
    "diff": "workers.cli.editions:diff",
    "tiers": "workers.cli.editions:tiers",
    "parse": "workers.cli.parse:parse",
    "reindex": "workers.cli.rebuild:reindex",
    "indices": "workers.cli.rebuild:indices",
}


class Commands(ServiceErrors):
    """Imports a command's module only when that command runs (or help lists it): all of them
    together pull in Celery, Elasticsearch and the parsers, which took `report-ingest parse`
    or `--help` from 0.4 s to 1.3 s to start."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=Commands)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Turn published country reports into searchable, structured data."""
    quiet_transport(ctx.invoked_subcommand)
