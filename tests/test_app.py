"""The Celery configuration that reliability depends on, and the beat schedule built from sources."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from celery.schedules import crontab

from workers.app import app, celery_config, longest_hold
from workers.task_names import (CHUNK_TIME_LIMIT, DISCOVER_TIME_LIMIT, FETCH_PAGE, INDEX_PENDING, INDEX_TIME_LIMIT)
from workers.schedule import beat_schedule
from workers.settings import Settings, get_settings
from workers.schedule import discover_source


def test_delivery_guarantees():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.task_acks_on_timeout is False  # a hard time limit requeues; the delivery cap ends it
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss
    visibility = get_settings().visibility_timeout
    assert conf.broker_transport_options["visibility_timeout"] == visibility
    # Longer than the longest task plus the longest retry countdown.
    # (The whole-rebuild task is acknowledged on receipt, so it has no such bound.)
    longest = max(INDEX_TIME_LIMIT, DISCOVER_TIME_LIMIT, CHUNK_TIME_LIMIT, app.conf.task_time_limit)
    defaults = Settings()
    assert visibility > longest + max(defaults.fetch_backoff_max, defaults.max_countdown)
    assert discover_source.time_limit == DISCOVER_TIME_LIMIT
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit


def test_fetch_time_limits_fit_the_slowest_fetch_the_settings_allow():
    """A PDF hop may take CONNECT_TIMEOUT + READ_TIMEOUT + PDF_READ_TIMEOUT (145 s by default), and its
    text PDF_PARSE_SECONDS more: a soft limit of 105 s ended every slow large PDF as `time_limit`."""
    for settings in (Settings(), Settings(pdf_read_timeout=400, max_redirects=0)):
        conf = celery_config(settings)
        pdf_hop = settings.connect_timeout + settings.read_timeout + settings.pdf_read_timeout
        robots = settings.connect_timeout + settings.read_timeout
        assert conf["task_soft_time_limit"] >= robots + pdf_hop + settings.pdf_parse_seconds \
            + (settings.max_redirects + 2) * settings.host_max_inline_wait
        assert conf["task_soft_time_limit"] < conf["task_time_limit"] < settings.visibility_timeout


def test_a_visibility_timeout_shorter_than_a_task_is_refused():
    settings = Settings(visibility_timeout=600)
    with pytest.raises(ValueError, match="VISIBILITY_TIMEOUT"):
        celery_config(settings)
    assert longest_hold(settings) > 600


def test_fetching_and_indexing_have_their_own_queues():
    routes = app.conf.task_routes
    assert routes[FETCH_PAGE]["queue"] != routes[INDEX_PENDING]["queue"]


def test_beat_schedule_has_one_run_per_enabled_source(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("""
sources:
  - {name: weekly, seeds: ["https://a.example/list"], allowed_hosts: [a.example], schedule: "0 3 * * 1"}
  - {name: often, seeds: ["https://b.example/list"], allowed_hosts: [b.example], schedule: every 5s}
  - {name: paused, seeds: ["https://c.example/list"], allowed_hosts: [c.example], schedule: every 5s, enabled: false}
""")
    schedule = beat_schedule(Settings(sources_file=path))
    assert set(schedule) == {"index-pending", "discover-weekly", "discover-often"}
    assert schedule["discover-often"]["schedule"] == timedelta(seconds=5)
    assert isinstance(schedule["discover-weekly"]["schedule"], crontab)
    assert schedule["discover-weekly"]["args"] == ("weekly",)


def test_an_invalid_sources_file_does_not_stop_workers_from_starting(tmp_path):
    """Defect 6: `import workers.app` read the sources file, so one bad edit crash-looped every worker."""
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - {name: Bad Name, seeds: [nope]}\n")
    env = {**os.environ, "SOURCES_FILE": str(bad)}
    imported = subprocess.run([sys.executable, "-c", "import workers.app, workers.crawl.tasks, workers.index.tasks; print('ok')"],
                              env=env, capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "ok"
    # Beat, which needs the schedule, says what is wrong with the file.
    with pytest.raises(ValueError, match="sources.yaml"):
        beat_schedule(Settings(sources_file=bad))


def test_a_worker_loading_its_includes_gets_housekeeping_and_the_watchdog():
    from workers.housekeeping import Housekeeping
    from workers.watchdog import Watchdog

    app.loader.import_default_modules()  # what a worker (and beat) does before building its blueprints
    assert Housekeeping in app.steps["consumer"] and Watchdog in app.steps["worker"]
