"""Floors on dependencies that close known vulnerabilities: declared, and met by what is installed."""

from __future__ import annotations


def test_urllib3_is_at_least_the_release_that_fixes_cve_2025_66471():
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    from packaging.version import Version

    declared = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "urllib3>=2.6" in declared
    assert Version(version("urllib3")) >= Version("2.6")
