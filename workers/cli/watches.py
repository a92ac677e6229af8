"""`report-ingest alerts`: what the watches (WATCHES_FILE) sent, and what is still pending."""

from __future__ import annotations

import json

import click

from workers.cli.context import es_and_names
from workers.cli.errors import fail
from workers.settings import get_settings
from workers.watches.alerts import PENDING, current_watches, list_alerts
from workers.watches.config import WatchesError


@click.command()
@click.option("--pending", is_flag=True, help="Only the alerts not delivered yet.")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=50, show_default=True)
@click.option("--resend", is_flag=True, help="Queue every pending alert for delivery again (after a lost worker).")
@click.option("--json", "as_json", is_flag=True, help="Print the alerts as JSON.")
def alerts(pending: bool, limit: int, resend: bool, as_json: bool) -> None:
    """List the alerts watches raised, newest first: sent, and pending with their attempts and last
    error; the watches file is validated first."""
    settings = get_settings()
    try:
        watches = current_watches(settings)
    except WatchesError as exc:
        fail(str(exc))
    es, _names = es_and_names()
    found = list_alerts(es, settings.index_prefix, status=PENDING if pending or resend else None, limit=limit)
    if resend:
        from workers.watches.tasks import deliver_alert

        for alert in found:
            deliver_alert.delay(alert["id"])
        click.echo(f"queued {len(found)} pending alerts")
        return
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    click.echo(f"{len(watches)} watches ({settings.watches_file or 'WATCHES_FILE not set'})")
    for alert in found:
        tried = f", {alert['attempts']} attempts" + (f", last error: {alert['last_error']}" if alert["last_error"]
                                                      else "")
        click.echo(f"{alert['created_at']}  {alert['status']:7}  {alert['watch']}  {alert['event']} "
                   f"{alert['report_key']} [{alert['tier'] or '-'}, {alert['move']}] -> {alert['destination']}"
                   f"{tried if alert['status'] == PENDING else ''}")
    click.echo(f"{len(found)} alerts" + (" pending" if pending else ""))
