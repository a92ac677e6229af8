"""`raise_alerts`: the reports an index batch wrote, checked against the watches; `deliver_alert`:
one alert to its webhook, retried until it is delivered.

The index task sends `raise_alerts` the IDs it wrote, by name (RAISE_ALERTS), before its
entries leave staging; the check reads the documents back (a GET is real-time) and raises the
alerts (workers/watches/alerts.py). While Elasticsearch is unreachable it is retried with the
same back-off as a webhook, and a worker lost mid-check delivers it again (late acknowledgement).

The POST goes through the crawl's vetted session under the watch's network policy (checked
before connecting and on the connected socket, as a fetch is: workers/crawl/netpolicy.py), so
a webhook cannot reach a private network, a link-local or a metadata address the watch did not
open. Any failure (refused, timeout, a status other than 2xx, a policy refusal) is recorded on
the alert (attempts, last error) and tried again with capped, jittered back-off, with no cap on
the tries: an alert is never dropped, and `report-ingest alerts` shows it pending meanwhile.

A delivery lost with a worker (one that died between raising the alert and sending its task: the
redelivered `raise_alerts` finds the alert raised and sends nothing) is not waited for:
each pending alert carries the time its delivery is due to have been tried (pushed on at every
failed try), and `redeliver_alerts`, which housekeeping sends at most every ALERTS_SWEEP_INTERVAL,
sends again the alerts past it, a bounded number per look.
"""

from __future__ import annotations

import logging
import time

import requests
from celery import Task
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout

from workers.app import app
from workers.backoff import backoff_seconds
from workers.clients import get_es
from workers.crawl.errors import PermanentFetchError, RetryableFetchError
from workers.documents import ReportDocument
from workers.crawl.netpolicy import get_http, guarded
from workers.settings import Settings, get_settings
from workers.task_names import DELIVER_ALERT, RAISE_ALERTS, REDELIVER_ALERTS
from workers.index.indices import IndexNames
from workers.watches.alerts import SENT, Alert, alerts_index, claim_overdue, current_watches, now_iso, raise_alerts

log = logging.getLogger(__name__)
# Overdue alerts sent again per look (the rest at the next look).
REDELIVER_BATCH = 100


class DeliveryFailed(Exception):
    """The webhook did not take the alert this time."""


def backoff(attempt: int, settings: Settings) -> float:
    return backoff_seconds(attempt, settings.webhook_backoff_base, settings.webhook_backoff_max)


def post(alert: Alert, settings: Settings) -> None:
    """Send the alert to its webhook; raise DeliveryFailed with the reason when it was not taken."""
    watch = current_watches(settings).get(alert.watch)
    if watch is None or watch.webhook != alert.destination:
        raise DeliveryFailed(f"watch {alert.watch} no longer sends to {alert.destination}")
    policy = watch.policy()
    try:
        policy.check(alert.destination)
        with guarded(policy, time.monotonic() + settings.webhook_timeout):
            response = get_http().post(alert.destination, data=alert.payload(), timeout=settings.webhook_timeout,
                                       headers={"Content-Type": "application/json", **watch.headers()},
                                       allow_redirects=False)
    except (requests.RequestException, PermanentFetchError, RetryableFetchError, LookupError) as exc:
        # A fetch error names its reason (private_address, timeout, ...), as a failed fetch does.
        raise DeliveryFailed(f"{getattr(exc, 'reason', type(exc).__name__)}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}")


@app.task(bind=True, name=DELIVER_ALERT, max_retries=None)
def deliver_alert(self: Task, alert_id: str) -> str:
    """Deliver one alert (idempotent: a delivered alert is not sent again)."""
    settings, es = get_settings(), get_es()
    index = alerts_index(settings.index_prefix)
    alert = Alert.from_source(es.get(index=index, id=alert_id)["_source"])
    if alert.status == SENT:
        return SENT
    if alert.destination == "log":
        _log(alert)
    else:
        try:
            post(alert, settings)
        except DeliveryFailed as exc:
            countdown = backoff(self.request.retries, settings)
            es.update(index=index, id=alert_id, doc={"attempts": alert.attempts + 1, "last_error": str(exc)[:500],
                                                     "due_at": now_iso(countdown + settings.alerts_redeliver_after)})
            log.warning("alert %s to %s failed (%s); trying again in %.0fs", alert_id, alert.destination, exc,
                        countdown)
            raise self.retry(countdown=countdown, exc=exc) from exc
    _sent(es, index, alert)
    return SENT


def _log(alert: Alert) -> None:
    log.info("watch %s: %s %s (%s, %s)", alert.watch, alert.event, alert.report_key, alert.tier, alert.move)


def _sent(es, index: str, alert: Alert) -> None:
    es.update(index=index, id=alert.id, doc={"status": SENT, "attempts": alert.attempts + 1, "last_error": None,
                                             "sent_at": now_iso(), "due_at": None})


@app.task(name=REDELIVER_ALERTS)
def redeliver_alerts() -> int:
    """Send again the alerts past their due time (at most REDELIVER_BATCH); how many."""
    settings = get_settings()
    overdue = claim_overdue(get_es(), settings.index_prefix, settings.alerts_redeliver_after, REDELIVER_BATCH)
    for alert_id in overdue:
        deliver_alert.delay(alert_id)
    if overdue:
        log.warning("sent again %d alert(s) whose delivery was lost (a worker died as it raised them)", len(overdue))
    return len(overdue)


@app.task(bind=True, name=RAISE_ALERTS, max_retries=None)
def raise_alerts_for(self: Task, document_ids: list[str]) -> int:
    """Raise (and send on their way) the alerts the reports `document_ids` raise; how many."""
    settings, es = get_settings(), get_es()
    try:
        found = es.mget(index=IndexNames(settings.index_prefix).reports, ids=document_ids)["docs"]
        raised = raise_alerts(es, settings, [ReportDocument.from_hit(doc) for doc in found if doc.get("found")])
    except (ESConnectionError, ConnectionTimeout) as exc:
        raise self.retry(countdown=backoff(self.request.retries, settings), exc=exc) from exc
    send_alerts(raised)
    return len(raised)


def send_alerts(alerts: list[Alert]) -> None:
    """On their way: webhooks through the queue, log-only watches into the log at once."""
    settings, es = get_settings(), get_es()
    for alert in alerts:
        if alert.destination == "log":
            _log(alert)
            _sent(es, alerts_index(settings.index_prefix), alert)
        else:
            deliver_alert.delay(alert.id)
