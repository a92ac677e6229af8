"""`report-ingest setup` (indices, templates, aliases) and `kibana-setup` (saved objects)."""

from __future__ import annotations

import json
import time

import click

from workers.cli.errors import fail
from workers.settings import get_settings


@click.command()
@click.option("--wait", "wait_seconds", default=120.0, show_default=True, help="Seconds to wait for Elasticsearch.")
def setup(wait_seconds: float) -> None:
    """Install index templates and create the indices and aliases (idempotent)."""
    from workers.cli.context import es_and_names
    from workers.index.indices import ensure_indices
    from workers.es_nodes import redacted_nodes
    from workers.redaction import redact_text

    (es, names), settings = es_and_names(), get_settings()
    where = redacted_nodes(settings.elasticsearch_url)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            es.cluster.health(wait_for_status="yellow", timeout="5s")
            break
        except Exception as exc:  # noqa: BLE001 - any failure here means "not ready yet"
            if time.monotonic() > deadline:
                fail(f"Elasticsearch at {where} not ready after {wait_seconds:.0f}s: {redact_text(str(exc))}")
            click.echo(f"waiting for Elasticsearch at {where} ...", err=True)
            time.sleep(2)
    live = ensure_indices(es, names, settings.schemas_dir, settings.elasticsearch_replicas)
    for kind, index in live.items():
        click.echo(f"{kind:10} -> {index}")
    replicas = settings.elasticsearch_replicas
    click.echo(f"replicas: {'auto (1 where a second data node can hold it, else 0)' if replicas == 'auto' else replicas}")


@click.command("kibana-setup")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for Kibana.")
def kibana_setup(timeout: float) -> None:
    """Import the Kibana data view, saved search and dashboard (idempotent)."""
    from workers.kibana import KibanaSetupError, setup_kibana

    try:
        summary = setup_kibana(get_settings(), timeout=timeout, echo=lambda m: click.echo(m, err=True))
    except KibanaSetupError as exc:
        fail(str(exc))
    click.echo(json.dumps(summary, indent=2))
