"""The Celery configuration that reliability depends on, and the beat schedule built from sources."""

from datetime import timedelta

from celery.schedules import crontab

from workers.app import DISCOVER_TIME_LIMIT, INDEX_TIME_LIMIT, VISIBILITY_TIMEOUT, app, beat_schedule
from workers.reindex import CHUNK_TIME_LIMIT
from workers.settings import Settings
from workers.tasks import discover_source


def test_delivery_guarantees():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT
    # Longer than the longest task plus the longest retry countdown.
    # (The whole-rebuild task is acknowledged on receipt, so it has no such bound.)
    longest = max(INDEX_TIME_LIMIT, DISCOVER_TIME_LIMIT, CHUNK_TIME_LIMIT, app.conf.task_time_limit)
    assert VISIBILITY_TIMEOUT > longest + Settings(_env_file=None).fetch_backoff_max
    assert discover_source.time_limit == DISCOVER_TIME_LIMIT
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit


def test_fetching_and_indexing_have_their_own_queues():
    routes = app.conf.task_routes
    assert routes["workers.tasks.fetch_page"]["queue"] != routes["workers.tasks.index_pending"]["queue"]


def test_beat_schedule_has_one_run_per_enabled_source(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("""
sources:
  - {name: weekly, seeds: ["https://a.example/list"], allowed_hosts: [a.example], schedule: "0 3 * * 1"}
  - {name: often, seeds: ["https://b.example/list"], allowed_hosts: [b.example], schedule: every 5s}
  - {name: paused, seeds: ["https://c.example/list"], allowed_hosts: [c.example], schedule: every 5s, enabled: false}
""")
    schedule = beat_schedule(Settings(_env_file=None, sources_file=path))
    assert set(schedule) == {"index-pending", "discover-weekly", "discover-often"}
    assert schedule["discover-often"]["schedule"] == timedelta(seconds=5)
    assert isinstance(schedule["discover-weekly"]["schedule"], crontab)
    assert schedule["discover-weekly"]["args"] == ("weekly",)
