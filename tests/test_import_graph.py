"""The parts of `workers/` depend one way (docs/architecture.md): shared records and keys at the
bottom, the index stage, the crawl (which hands over to the index only through its staging),
what reads or rebuilds the indices, the wiring of a worker, the CLI on top.

Counted over runtime imports (an import under `if TYPE_CHECKING:` never runs), wherever they
sit in a module: an import inside a function still ties the two parts together.
"""

from __future__ import annotations

import ast
from pathlib import Path

WORKERS = Path(__file__).resolve().parent.parent / "workers"

# Bottom to top: a part imports parts of its own layer or below, never above.
LAYERS: list[frozenset[str]] = [frozenset(layer.split()) for layer in (
    # shared: settings, documents and records, keys, task names, the crawl's Redis state, clients, the Celery app,
    # the fixes of other libraries
    "settings urls keys task_names backoff batching heap redis_clock progress_line redaction timings "
    "tracking raw_pages documents records parse es_nodes sentinel clients es_read queues heartbeats delivery_lua "
    "delivery app fixes watchdog",
    "index",
    "crawl",
    # what reads what the index wrote, or rebuilds it, or crawls its failures again
    "search editions rebuild kibana watches retry_failed",
    # what a worker process and beat add around the stages
    "housekeeping schedule worker",
    "cli",
)]
# The only module of the index stage the crawl hands over through.
HAND_OVER = "workers.index.staging"
# Imports that still break the rule, each until the change that ends it; an entry no longer
# needed fails the check, so it is taken out with the import.
PENDING: frozenset[tuple[str, str]] = frozenset()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(module: str, source: str, is_package: bool = False) -> set[str]:
    """The `workers.*` modules `source` (module `module`) imports when it runs."""
    tree = ast.parse(source)
    skipped = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If) and _is_type_checking(branch.test)
               for statement in branch.body for node in ast.walk(statement)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from workers.tracking import state` imports the module workers.tracking.state
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("workers.")}


def module_graph(root: Path = WORKERS) -> dict[str, set[str]]:
    """module -> the modules of `workers` it imports at runtime."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph = {}
    for name, (path, is_package) in modules.items():
        imported = runtime_imports(name, path.read_text(), is_package)
        # `from workers.x import name`: keep the module, drop the name imported from it
        graph[name] = {target for target in imported if target in modules}
    return graph


def part(module: str) -> str:
    return module.split(".")[1]


def layer(name: str) -> int:
    return next(i for i, members in enumerate(LAYERS) if name in members)


def cycles(edges: set[tuple[str, str]]) -> list[set[str]]:
    """Groups of parts that reach each other (strongly connected, more than one part)."""
    reach = {a: {b for x, b in edges if x == a} for a, _ in edges}
    changed = True
    while changed:
        changed = False
        for a in reach:
            more = set().union(*(reach.get(b, set()) for b in reach[a])) - reach[a]
            if more:
                reach[a] |= more
                changed = True
    groups = {frozenset({a} | {b for b in reach[a] if a in reach.get(b, set())}) for a in reach if a in reach[a]}
    return [set(group) for group in groups if len(group) > 1]


def violations(graph: dict[str, set[str]], pending: frozenset[tuple[str, str]] = PENDING) -> list[str]:
    """Every import that points the wrong way, and every pending exception no longer needed."""
    found, used = [], set()
    edges = set()
    for importer, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = part(importer), part(target)
            if a == b:
                continue
            if (importer, target) in pending:
                used.add((importer, target))
                continue
            edges.add((a, b))
            unknown = [p for p in (a, b) if not any(p in members for members in LAYERS)]
            if unknown:
                found.append(f"{importer} -> {target}: place {', '.join(unknown)} in a layer")
            elif layer(b) > layer(a):
                found.append(f"{importer} -> {target}: {a} may not import {b}, which sits above it")
            elif (a, b) == ("crawl", "index") and target != HAND_OVER:
                found.append(f"{importer} -> {target}: the crawl hands over to the index only through {HAND_OVER}")
    found += [f"parts that import each other: {sorted(group)}" for group in cycles(edges)]
    found += [f"pending exception {a} -> {b} is no longer needed: take it out" for a, b in sorted(pending - used)]
    return found


def test_the_parts_of_workers_depend_one_way():
    assert violations(module_graph()) == []


def test_every_part_of_workers_has_a_layer():
    parts = {path.stem if path.is_file() else path.name for path in WORKERS.iterdir()
             if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()}
    assert parts == set().union(*LAYERS)


def test_a_reverse_import_is_caught():
    graph = {
        "workers.records": {"workers.keys"},
        "workers.index.tasks": {"workers.records", "workers.crawl.profile"},  # the index reaching back
        "workers.crawl.tasks": {"workers.index.staging", "workers.index.bulk"},
        "workers.keys": {"workers.urls", "workers.app"},
        "workers.app": {"workers.keys"},
        "workers.urls": set(), "workers.crawl.profile": set(), "workers.index.staging": set(),
        "workers.index.bulk": set(),
    }
    found = violations(graph, pending=frozenset())
    assert "workers.index.tasks -> workers.crawl.profile: index may not import crawl, which sits above it" in found
    assert any(v.startswith("workers.crawl.tasks -> workers.index.bulk: the crawl hands over") for v in found)
    assert "parts that import each other: ['app', 'keys']" in found
    assert not any(v.startswith("workers.crawl.tasks -> workers.index.staging") for v in found)  # the hand-over


def test_a_pending_exception_no_longer_needed_is_reported():
    graph = {"workers.index.failures": {"workers.index.indices"}, "workers.index.indices": set()}
    assert violations(graph, pending=frozenset({("workers.index.failures", "workers.crawl.start")})) == [
        "pending exception workers.index.failures -> workers.crawl.start is no longer needed: take it out"]


def test_imports_for_type_checking_do_not_count_and_those_in_functions_do():
    source = """
from typing import TYPE_CHECKING
from workers.keys import Keys
from . import state
if TYPE_CHECKING:
    from workers.crawl.http import Page
def later():
    from workers.index.staging import stage
"""
    imported = runtime_imports("workers.tracking.progress", source)
    assert {"workers.keys", "workers.tracking.state", "workers.index.staging"} <= imported
    assert not any(name.startswith("workers.crawl") for name in imported)
