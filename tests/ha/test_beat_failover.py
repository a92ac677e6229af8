"""Beat and the result backend across a Redis failover (one replica, three Sentinels, passwords,
plain text and TLS): a beat and a standby beat, both through the Sentinels, and a source whose
discovery is due every second. The master is SIGKILLed. The discovery goes on through the promoted
replica, fired by one beat at a time (RedBeat's lock, in Redis) from its schedule entry as it was;
and a rebuild run as tasks, whose chunks' chord is the one user of the result backend (the chunks'
results stored, the chord's callback reading them), completes through the new master as before.

The replica is in sync when the master dies, as it is most of the time; what a failover can lose
of beat's own writes is in docs/deploy.md.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from devtools.cluster import kill
from tests.faults.helpers import await_condition, summary
from tests.reindexing import live
from tests.site import html
from workers.keys import Keys
from workers.rebuild.tasks import rebuild_index

pytestmark = [pytest.mark.ha, pytest.mark.services, pytest.mark.slow]

SOURCE = "ticker"
ENTRY = f"discover-{SOURCE}"  # its name in beat's schedule (workers/schedule.py)
SEED = "/list"
SENT = rf"^\[([\d-]+ [\d:,]+): INFO/MainProcess\] Scheduler: Sending due task {ENTRY} "


def sources_yaml(base: str) -> str:
    return f"""
sources:
  - name: {SOURCE}
    seeds: ["{base}{SEED}"]
    discovery: {{url_pattern: "/report-"}}
    allowed_hosts: ["127.0.0.1"]
    allow_private_networks: ["127.0.0.1/32"]
    schedule: every 1s
    rate: 50
"""


def sent(beat) -> list[datetime]:
    return [datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f") for m in beat.said(SENT)]


def rebuild(scenario) -> float:
    """Rebuild the reports index as tasks (`reindex --detach`); its alias moves only once the chord
    of its chunks completed through the result backend. Seconds from the request to its end."""
    es, client, started = scenario.es(), scenario.client(), time.monotonic()
    old, lock = live(es, scenario.names), Keys(scenario.settings.index_prefix).rebuild_lock
    rebuild_index.apply_async(kwargs={"chunks": 2})
    # Its lock goes last: a run still finishing when the master dies leaves it to lapse (60 s).
    await_condition(lambda: live(es, scenario.names) != old and not client.exists(lock), 120,
                    "the rebuild swapped the alias and ended")
    return time.monotonic() - started


def test_beat_fires_on_after_a_failover_one_beat_at_a_time_and_the_result_backend_follows(sentinel_scenario,
                                                                                          tmp_path):
    scenario = sentinel_scenario
    group, site = scenario.redis, scenario.site
    reports = scenario.serve(2)
    site.routes[SEED] = html("".join(f'<a href="{url}">report</a>' for url in reports))
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(site.base))
    scenario.env["SOURCES_FILE"] = str(sources)  # for the workers and beats started from here on
    redbeat = Keys(scenario.settings.index_prefix).redbeat
    lock = redbeat + ":lock"  # RedBeat's name for it, under the prefix

    def runs(after: float = 0.0) -> int:
        """Discoveries run (each fetches the seed once) since `after` (time.monotonic())."""
        return sum(1 for hit in list(site.hits[SEED]) if hit > after)

    def run_count() -> int:
        return json.loads(scenario.client().hget(redbeat + ENTRY, "meta") or "{}").get("total_run_count", 0)

    scenario.start_worker(concurrency=2)
    first = scenario.start_beat()
    await_condition(lambda: first.said(r"beat: Acquired lock"), 60, "the first beat took the lock")
    standby = scenario.start_beat()
    await_condition(lambda: runs() >= 3 and scenario.indexed() >= len(reports), 120,
                    "the discovery ran on its schedule and indexed the reports")
    before_kill = rebuild(scenario)  # the worker's result backend connected to the old master
    runs_before, holder = run_count(), scenario.client().get(lock)

    old_master = group.master()
    (replica,) = [s for s in group.servers if s is not old_master]
    kill(old_master)
    killed = time.monotonic()
    await_condition(lambda: group.master() is replica, 60, "every Sentinel hands out the promoted replica")
    promoted = time.monotonic() - killed
    # From the promotion on, a run is one beat sent through the new master: those sent before the
    # kill ran within milliseconds of it.
    await_condition(lambda: runs(killed + promoted) >= 3, 120, "the discovery runs on its schedule after the failover")
    fired_again = min(hit for hit in site.hits[SEED] if hit > killed + promoted) - killed
    after_failover = rebuild(scenario)

    firing = [beat for _, beat in sorted((when, n) for n, b in enumerate((first, standby)) for when in sent(b))]
    assert sum(a != b for a, b in zip(firing, firing[1:])) <= 1, f"both beats fired, in turn: {firing}"
    assert run_count() > runs_before, "the schedule entry on the new master is not the one beat runs"
    # The beat that fires now holds the lock on the new master: the first one kept it (the replica
    # had it), or the standby took it.
    assert scenario.client().ttl(lock) > 0
    assert (scenario.client().get(lock) == holder) == (firing[-1] == firing[0])
    assert all(worker.process.poll() is None for worker in scenario.workers), "a worker died in the failover"
    summary(f"Redis master SIGKILLed under beat (1 replica in sync, 3 Sentinels, passwords"
            f"{', TLS' if group.tls else ''}; a discovery due every 1 s, a beat and a standby): replica "
            f"promoted {promoted:.1f}s after the kill, the discovery ran again {fired_again:.1f}s after it, "
            f"fired by {'the standby' if firing[-1] else 'the same beat'}, one beat at a time; "
            f"a rebuild as tasks (its chord through the result backend) swapped in {after_failover:.1f}s "
            f"after the failover ({before_kill:.1f}s before it)")
