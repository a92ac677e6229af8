"""The shape of the code base, checked: no import circles, no connection at import, modules of a
readable size (issue 10's "done when")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

PACKAGES = ("workers", "devtools")
MAX_LINES = 350
# A longer module says why at its top, in its docstring.
LONG_BECAUSE = "Long because"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported_at_module_level(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports when it is imported (not inside functions, not for typing)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in modules and t != name}


def test_no_module_imports_itself_back_through_others():
    modules = _modules()
    graph = {name: _imported_at_module_level(name, path, modules) for name, path in modules.items()}
    # A package's __init__ importing its own submodules is a facade, not a circle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    circles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append(" -> ".join([*trail[trail.index(target):], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_importing_any_module_opens_no_connection():
    modules = sorted(name for name in _modules() if not name.endswith(".__main__"))  # those run a command
    script = (
        "import socket, importlib, sys\n"
        "def refuse(self, address):\n"
        "    raise AssertionError(f'connects to {address} at import')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(len(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_modules_stay_readable_in_size_or_say_why():
    too_long = []
    for name, path in _modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and LONG_BECAUSE not in (ast.get_docstring(ast.parse(path.read_text())) or ""):
            too_long.append(f"{name}: {lines} lines")
    assert too_long == []


def test_the_folder_listing_shows_the_pipelines():
    packages = {p.name for p in (REPO / "workers").iterdir() if (p / "__init__.py").exists()}
    assert {"crawl", "parse", "index", "rebuild", "search", "cli"} <= packages


def test_the_readme_names_every_setting():
    from dataclasses import fields

    from workers.settings import Settings

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Configuration"):readme.index("## Reliability choices")]
    assert [name.upper() for name in (field.name for field in fields(Settings)) if f"`{name.upper()}`" not in section] == []
