"""The command as a package: every command registered and found, `crawl` starting without the
heavy libraries, the development commands failing clearly where devtools is missing, one
credential choice for Elasticsearch and Kibana."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from workers.cli import COMMANDS, main
from workers.clients import elasticsearch_credentials
from workers.kibana import kibana_session
from workers.settings import Settings

DOCUMENTED = {"setup", "kibana-setup", "services", "demo", "worker", "beat", "sources", "crawl", "failures",
              "retry-failed", "status", "search", "conflicts", "parse", "reindex", "indices", "history", "diff", "tiers", "alerts"}


def test_every_command_is_registered_under_its_own_name():
    assert set(COMMANDS) == DOCUMENTED
    context = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(context, name)
        assert isinstance(command, click.Command) and command.name == name, name


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == DOCUMENTED


def test_help_lists_each_command_by_the_opening_of_its_own_help():
    context = click.Context(main)
    for name, (_where, summary) in COMMANDS.items():
        own = " ".join(main.get_command(context, name).help.split())
        assert own.startswith(summary.rstrip(".")), (name, summary, own[:80])


def test_help_and_read_only_commands_start_without_celery_the_elasticsearch_client_or_the_parsers():
    # `--help` listed the commands by importing all of them (1.2 s); search, status and the edition
    # commands need neither Celery, the Elasticsearch client package, pydantic nor the parsers to
    # answer (run for real: tests/test_editions.py).
    heavy = ("celery", "kombu", "elasticsearch", "elastic_transport", "pydantic", "bs4", "lxml", "workers.parse.pages",
             "workers.app")
    for module in ("workers.cli", "workers.cli.search", "workers.cli.editions", "workers.cli.status",
                   "workers.editions.compare", "workers.editions.read", "workers.search.faceted",
                   "workers.search.export", "workers.parse.countries"):
        probe = (f"import sys, {module}; "
                 f"print(sorted({{m for m in sys.modules if m.startswith({heavy!r})}}))")
        imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        assert imported.strip() == "[]", module


def test_the_crawl_command_starts_without_the_parsers_or_the_elasticsearch_client():
    # Its start-up is on the clock of every crawl started by hand; these took it from 1.1 s to 2.1 s.
    heavy = ("elasticsearch", "elastic_transport", "bs4", "lxml", "pypdfium2", "trafilatura", "workers.parse",
             "workers.crawl.tasks", "workers.index.tasks")
    probe = ("import sys, workers.cli.crawl; "
             f"print(sorted({{m.split('.')[0] if not m.startswith('workers') else m for m in sys.modules "
             f"if m.startswith({heavy!r})}}))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"


@pytest.mark.parametrize("args", [["services", "status"], ["demo"]])
def test_development_commands_say_what_is_missing_without_devtools(monkeypatch, args):
    for name in [m for m in sys.modules if m == "devtools" or m.startswith("devtools.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "devtools", None)  # as in the worker image: no such package
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.startswith("error: this command needs the `devtools` package"), result.output
    assert "Traceback" not in result.output


def settings(**values) -> Settings:
    """As the environment gives them: strings, an empty one unset."""
    return Settings.from_env(values)


@pytest.mark.parametrize("values, expected", [
    ({"elasticsearch_api_key": "a2V5", "elasticsearch_username": "u", "elasticsearch_password": "p"},
     {"api_key": "a2V5"}),
    ({"elasticsearch_username": "u", "elasticsearch_password": "p"}, {"basic_auth": ("u", "p")}),
    ({"elasticsearch_api_key": "", "elasticsearch_username": "u", "elasticsearch_password": "p"},
     {"basic_auth": ("u", "p")}),
    ({"elasticsearch_username": "u", "elasticsearch_password": ""}, {}),
    ({"elasticsearch_username": "u"}, {}),
    ({}, {}),
], ids=["api-key-first", "user-and-password", "empty-api-key-is-unset", "empty-password-is-unset",
        "user-alone", "none"])
def test_elasticsearch_and_kibana_choose_the_same_credentials(values, expected):
    chosen = settings(**values)
    assert elasticsearch_credentials(chosen) == expected
    session = kibana_session(chosen)
    assert session.headers.get("Authorization") == (f"ApiKey {expected['api_key']}" if "api_key" in expected else None)
    assert session.auth == expected.get("basic_auth")
