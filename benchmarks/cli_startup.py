"""How long read-only commands take to answer, start-up included, against a bare Python start.

    .venv/bin/python benchmarks/cli_startup.py [--rounds 7]

Each command runs as a user runs it (`python -m workers.cli ...`, a new process) against a
real Redis and Elasticsearch (started here on free ports, or REDIS_URL / ELASTICSEARCH_URL)
holding the demo site's four editions (devtools/editions.py). Commands and the baseline
(`python -c pass`, the interpreter's own start) alternate round by round, so the ratios hold
while the load of a shared machine drifts. Per command: the wall clock (what a user waits,
inflated by other processes on a busy machine), its minimum (the closest to an idle machine)
and median, and the median CPU time of the command's process (user + system, what it would
wait on an idle core, plus the round trips to the services). `--before DIR`: a checkout of
another commit (`git archive COMMIT | tar -x -C DIR`), whose commands run in the same rounds
for a before/after comparison (the ones it lacks show as n/a). Figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

COMMANDS = [
    ["--help"], ["search", "--help"], ["search", "trafficking"], ["search", "--country", "Ghana"],
    ["history", "Ghana"], ["diff", "Ghana", "2023", "2024"], ["tiers"], ["status"],
]
BASELINE = ["-c", "pass"]


def _services() -> tuple[dict[str, str], list]:
    from devtools import services

    env, started = {}, []
    if not os.environ.get("REDIS_URL"):
        started.append(services.start_redis(Path(tempfile.mkdtemp(prefix="bench-redis-"))))
        env["REDIS_URL"] = started[-1].url
    if not os.environ.get("ELASTICSEARCH_URL"):
        started.append(services.start_elasticsearch(Path(tempfile.mkdtemp(prefix="bench-es-")), echo=lambda m: None))
        env["ELASTICSEARCH_URL"] = started[-1].url
    return env, started


def _load_editions(env: dict[str, str]) -> None:
    os.environ.update(env)
    from devtools import editions
    from workers.clients import get_es, reset_clients
    from workers.index.bulk import bulk_write
    from workers.index.indices import IndexNames, ensure_indices
    from workers.parse import parse_page
    from workers.settings import get_settings

    reset_clients()
    settings, es = get_settings(), get_es()
    names = IndexNames(settings.index_prefix)
    ensure_indices(es, names, settings.schemas_dir)
    actions = []
    for path, body in editions.pages().items():
        doc = parse_page(body, "http://127.0.0.1:8765" + path, "text/html; charset=utf-8").indexable(
            "2026-01-01T00:00:00+00:00")
        actions.append({"_op_type": "index", "_index": names.reports, "_id": doc.id, "_source": doc.to_source()})
    bulk_write(es, actions)
    es.indices.refresh(index=names.reports)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(args: list[str], env: dict[str, str], repo: Path = REPO) -> tuple[float, float] | None:
    """Wall and CPU seconds of one run; None for a command the `--before` checkout lacks."""
    start, cpu = time.perf_counter(), _cpu()
    # The checkout's own package first: the editable install points at this one.
    done = subprocess.run([sys.executable, *args], env={**env, "PYTHONPATH": str(repo)}, cwd=repo,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        if repo != REPO and "No such command" in done.stderr:
            return None
        raise SystemExit(f"{' '.join(args)} failed in {repo}: {done.stderr[-500:]}")
    return elapsed, _cpu() - cpu


def _figures(values: list[tuple[float, float] | None]) -> tuple[float, float, float, float] | None:
    """Minimum, median and maximum wall and median CPU seconds."""
    if any(v is None for v in values):
        return None
    walls = [w for w, _c in values]
    return min(walls), statistics.median(walls), max(walls), statistics.median(c for _w, c in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="a checkout of the commit to compare with")
    args = parser.parse_args()
    env, started = _services()
    env["INDEX_PREFIX"] = "bench-cli-"
    try:
        _load_editions(env)
        full_env = {**os.environ, **env}
        repos = {"now": REPO, **({"before": args.before.resolve()} if args.before else {})}
        times: dict[tuple[str, str], list] = {(label, " ".join(c)): [] for c in COMMANDS for label in repos}
        base: list = []
        for _ in range(args.rounds):
            base.append(_run(BASELINE, full_env))
            for command in COMMANDS:
                for label, repo in repos.items():
                    times[(label, " ".join(command))].append(_run(["-m", "workers.cli", *command], full_env, repo))
        b = statistics.median(wall for wall, _cpu in base)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}; python -c pass: {b * 1000:.0f} ms wall, "
              f"{statistics.median(cpu for _wall, cpu in base) * 1000:.0f} ms CPU")
        print(f"{'':7}{'command':28} {'min':>8} {'median':>8} {'max':>8} {'x pass':>7} {'CPU':>8}")
        for (label, name), values in times.items():
            found = _figures(values)
            if found is None:
                print(f"{label:7}{name:28} {'n/a':>8}")
                continue
            least, wall, most, cpu = found
            print(f"{label:7}{name:28} {least * 1000:6.0f}ms {wall * 1000:6.0f}ms {most * 1000:6.0f}ms "
                  f"{wall / b:7.1f} {cpu * 1000:6.0f}ms")
    finally:
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    main()
