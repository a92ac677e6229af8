"""The sources file: the shipped one is valid, and every kind of mistake names its line and field."""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from celery.schedules import crontab

from workers.sources import Source, SourcesError, load_sources

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
sources:
  - name: example
    seeds: [https://example.org/reports/]
    sitemaps: [https://example.org/sitemap.xml]
    discovery:
      link_selector: a.report-link
      url_pattern: '^https://example\\.org/reports/\\d+$'
      next_selector: a.next
    allowed_hosts: [example.org]
    schedule: "0 3 * * 1"
  - name: local
    sitemaps: [http://127.0.0.1:8765/sitemap.xml]
    allowed_hosts: ["127.0.0.1"]
    allow_private_networks: ["127.0.0.1/32"]
    schedule: every 5s
    recheck_min: 12h
    recheck_max: 7d
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(dedent(text))
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(dedent(text).splitlines(), 1) if needle in line]
    return hits[nth - 1]


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(SourcesError) as caught:
        load_sources(write(tmp_path, text))
    return str(caught.value)


def test_good_file_loads(tmp_path):
    sources = load_sources(write(tmp_path, GOOD))
    assert list(sources) == ["example", "local"]
    example = sources["example"]
    assert example.discovery.pattern.search("https://example.org/reports/12")
    assert example.parser == "auto" and example.rate == 1.0 and example.concurrency == 2
    assert example.on_gone == "delete"
    assert (example.recheck_min_seconds, example.recheck_max_seconds) == (86400, 30 * 86400)
    local = sources["local"]
    assert (local.recheck_min_seconds, local.recheck_max_seconds) == (12 * 3600, 7 * 86400)
    assert example.allows_host("https://EXAMPLE.org/x") and not example.allows_host("https://www.example.org/x")
    assert not example.allows_host("not a url")


def test_schedules():
    every = Source(name="a", allowed_hosts=["a.org"], schedule="every 5s")
    assert every.celery_schedule() == timedelta(seconds=5)
    weekly = Source(name="a", allowed_hosts=["a.org"], schedule="0 3 * * 1").celery_schedule()
    assert isinstance(weekly, crontab)
    # Cron's field order, not celery's positional one: day 1 of the week, any day of the month.
    assert weekly.day_of_week == {1} and weekly.hour == {3} and weekly.minute == {0}
    assert weekly.day_of_month == set(range(1, 32))


def reachable(source: Source, address: str) -> bool:
    from workers.profile import source_profile

    return source_profile(source).policy.refusal(ipaddress.ip_address(address)) is None


def test_private_networks():
    def source(value) -> Source:
        return Source(name="a", allowed_hosts=["a.org"], schedule="every 1h", allow_private_networks=value)

    assert reachable(source(True), "10.1.2.3") and reachable(source(True), "127.0.0.2")
    assert not reachable(source(False), "127.0.0.2")
    cidrs = source(["127.0.0.2/32", "fd00::/8"])
    assert reachable(cidrs, "127.0.0.2") and reachable(cidrs, "fd00::1")
    assert not reachable(cidrs, "10.1.2.3") and not reachable(cidrs, "127.0.0.1")
    # Whatever a source allows, link-local and cloud metadata addresses stay out of reach.
    wide = source(["0.0.0.0/0", "::/0"])
    for address in ("169.254.169.254", "fe80::1", "fd00:ec2::254", "100.100.100.200"):
        assert not reachable(source(True), address) and not reachable(wide, address), address


BAD_CASES = {
    "bad crontab": (
        'schedule: "61 * * * *"',
        ".schedule: invalid crontab '61 * * * *': minute must be 0-59",
    ),
    "bad crontab weekday": (
        'schedule: "0 3 * * 9"',
        ".schedule: invalid crontab '0 3 * * 9': day_of_week must be",
    ),
    "unknown key": ("colour: blue", ".colour: unknown key 'colour'"),
    "bad regex": ("discovery: {url_pattern: '([a-z'}", ".discovery.url_pattern: invalid regular expression"),
    "bad duration": ("recheck_min: 3 days", ".recheck_min: invalid duration '3 days'"),
    "min above max": ("recheck_min: 60d", ".recheck_max: recheck_max '30d' is shorter than recheck_min '60d'"),
    "bad cidr": ("allow_private_networks: ['10.0.0.1/8']", ".allow_private_networks[0]: invalid CIDR"),
    "link-local cidr": ("allow_private_networks: ['169.254.0.0/16']",
                        ".allow_private_networks[0]: 169.254.0.0/16 is a link-local network, which is never fetched"),
    "bad parser": ("parser: magic", ".parser: Input should be 'auto'"),
    "bad rate": ("rate: 0", ".rate: Input should be greater than 0"),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_errors_name_line_and_field(tmp_path, case):
    extra, expected = BAD_CASES[case]
    text = GOOD + "  - name: broken\n    allowed_hosts: [b.org]\n"
    text += "" if "schedule" in extra else "    schedule: every 1h\n"
    text += f"    {extra}\n"
    message = error_for(tmp_path, text)
    # The offending value is on the last line, except for a recheck_max left to
    # its default: that error points at the source it belongs to.
    line = line_of(text, "- name: broken") if case == "min above max" else len(text.splitlines())
    assert message.startswith(f"{tmp_path / 'sources.yaml'}:{line}: sources[2] (broken){expected}"), message
    assert "\n" not in message


def test_missing_allowed_hosts_points_at_the_source(tmp_path):
    text = GOOD + "  - name: broken\n    schedule: every 1h\n"
    message = error_for(tmp_path, text)
    assert message.endswith(f":{line_of(text, '- name: broken')}: sources[2] (broken).allowed_hosts: required field is missing")


def test_seed_off_allowed_hosts_points_at_the_seed(tmp_path):
    text = GOOD.replace("seeds: [https://example.org/reports/]",
                        "seeds:\n      - https://example.org/reports/\n      - https://evil.example.com/list")
    message = error_for(tmp_path, text)
    line = line_of(text, "evil.example.com")
    assert message == (f"{tmp_path / 'sources.yaml'}:{line}: sources[0] (example).seeds[1]: "
                       f"host of 'https://evil.example.com/list' is not in allowed_hosts ['example.org']")


def test_bad_url_is_reported(tmp_path):
    message = error_for(tmp_path, GOOD.replace("sitemaps: [https://example.org/sitemap.xml]", "sitemaps: [ftp://example.org/x]"))
    assert f":{line_of(GOOD, 'sitemaps:')}: sources[0] (example).sitemaps[0]: not an http(s) URL" in message


def test_duplicate_name_points_at_the_second(tmp_path):
    text = GOOD + "  - name: example\n    allowed_hosts: [c.org]\n    schedule: every 1h\n"
    message = error_for(tmp_path, text)
    assert message.endswith(f":{line_of(text, '- name: example', nth=2)}: sources[2] (example).name: duplicate source name 'example'")


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    text = GOOD + "  - name: broken\n    seeds: [https://b.org/\n    schedule: every 1h\n"
    message = error_for(tmp_path, text)
    assert re.match(rf"{re.escape(str(tmp_path / 'sources.yaml'))}:\d+:\d+: YAML syntax error: ", message), message


def test_unquoted_crontab_is_a_yaml_error_with_its_line(tmp_path):
    text = GOOD.replace('schedule: "0 3 * * 1"', "schedule: * * * * *")
    message = error_for(tmp_path, text)
    assert f":{line_of(text, 'schedule: * * * * *')}:" in message and "YAML syntax error" in message


def test_duplicate_key_and_top_level_shape(tmp_path):
    text = GOOD + "    schedule: every 2h\n"
    assert error_for(tmp_path, text).endswith(f":{line_of(text, 'every 2h')}: duplicate key 'schedule'")
    assert "expected a top-level 'sources:' list" in error_for(tmp_path, "- name: a\n")
    assert "expected a top-level 'sources:' list" in error_for(tmp_path, "")
    assert error_for(tmp_path, GOOD + "extra: 1\n").endswith(f":{GOOD.count(chr(10)) + 1}: unknown top-level key 'extra'")


def test_several_errors_are_all_reported(tmp_path):
    text = GOOD.replace("rate", "x").replace('schedule: "0 3 * * 1"', 'schedule: "0 25 * * *"') + "    parser: nope\n"
    lines = error_for(tmp_path, text).splitlines()
    assert len(lines) == 2
    assert ".schedule: invalid crontab '0 25 * * *': hour must be 0-23" in lines[0]
    assert "sources[1] (local).parser:" in lines[1]


def test_shipped_sources_file():
    sources = load_sources(REPO / "deploy" / "sources.yaml")
    assert set(sources) == {"refworld-tip", "state-tip", "ecoi-tip", "demo"}

    refworld = sources["refworld-tip"]
    assert refworld.parser == "refworld" and refworld.concurrency == 1 and refworld.rate == 0.5
    assert isinstance(refworld.celery_schedule(), crontab)
    for url in ("https://www.refworld.org/docid/4a4214b0c.html",
                "https://www.refworld.org/docid/484f9a3b2d.html",
                "https://www.refworld.org/reference/annualreport/usdos/2019/en/122578"):
        assert refworld.discovery.pattern.search(url), url
        assert refworld.allows_host(url)
    for url in ("https://www.refworld.org/search?keywords=tip", "https://www.refworld.org/docid/4a4214b0c.pdf",
                "https://www.refworld.org/reference/countryrep/usdos/2019/en/122578"):
        assert not refworld.discovery.pattern.search(url), url

    state = sources["state-tip"]
    assert state.parser == "statedept" and state.sitemaps == ["https://www.state.gov/sitemap_index.xml"]
    for url in ("https://www.state.gov/reports/2024-trafficking-in-persons-report/burma/",
                "https://www.state.gov/reports/2019-trafficking-in-persons-report-2/thailand/",
                "https://www.state.gov/reports/2021-trafficking-in-persons-report/north-korea/"):
        assert state.discovery.pattern.search(url), url
    for url in ("https://www.state.gov/reports/2024-trafficking-in-persons-report/",
                "https://www.state.gov/reports/2024-country-reports-on-human-rights-practices/burma/",
                "https://state.gov/reports/2024-trafficking-in-persons-report/burma/"):
        assert not state.discovery.pattern.search(url), url
    assert not state.allows_host("https://www.refworld.org/docid/4a4214b0c.html")

    ecoi = sources["ecoi-tip"]
    assert not ecoi.enabled and ecoi.parser == "auto" and ecoi.concurrency == 1
    for url in ("https://www.ecoi.net/en/document/2055173.html", "https://www.ecoi.net/en/document/1437465.html"):
        assert ecoi.discovery.pattern.search(url), url
        assert ecoi.allows_host(url)
    for url in ("https://www.ecoi.net/de/dokument/2055173.html", "https://www.ecoi.net/en/source/11558.html",
                "https://www.ecoi.net/en/file/local/2055173/download.pdf", "https://ecoi.net/en/document/1.html"):
        assert not ecoi.discovery.pattern.search(url), url

    demo = sources["demo"]
    assert demo.celery_schedule() == timedelta(hours=1)
    assert reachable(demo, "127.0.0.1")
    assert not reachable(demo, "10.0.0.1")
    assert not reachable(refworld, "127.0.0.1")
