"""Crawl sources, declared in one YAML file and validated when it is loaded.

A mistake in the file must stop the scheduler with a message that names the
file, the line and the field, not surface days later as a crawl that silently
does nothing. Pydantic does the validation; the YAML node tree supplies the
line of each value it complains about.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from celery.schedules import crontab
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from workers.netpolicy import PRIVATE_NETWORKS, IPNetwork, parse_network
from workers.urls import normalize_url

_NAME = re.compile(r"^[a-z0-9-]+$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_EVERY = re.compile(r"^every\s+(\d+[smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Cron's field order, which is not the order of celery's positional arguments.
_CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_CRON_RANGES = {"minute": "0-59", "hour": "0-23", "day_of_month": "1-31", "month_of_year": "1-12",
                "day_of_week": "0-6 or sun-sat"}


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as "90s", "12h" or "7d"."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: expected <number><s|m|h|d>, e.g. '12h'")
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return seconds


def _check_duration(text: str) -> str:
    duration_seconds(text)
    return text


def _check_schedule(text: str) -> str:
    text = " ".join(text.split())
    if every := _EVERY.match(text):
        duration_seconds(every[1])
        return text
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"invalid schedule {text!r}: expected 5 crontab fields ('0 3 * * 1') or 'every <N><s|m|h|d>'"
        )
    # One field at a time, so the message can say which field is wrong.
    for name, value in zip(_CRON_FIELDS, fields, strict=True):
        try:
            crontab(**{name: value})
        except ValueError as exc:
            raise ValueError(
                f"invalid crontab {text!r}: {name} must be {_CRON_RANGES[name]} ({exc})"
            ) from exc
    return text


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if not host or (any(c in host for c in "/:@ ") and not _is_ip(host)):
        raise ValueError(f"{host!r} is not a hostname (no scheme, port or path)")
    return host


def _check_cidr(text: str) -> str:
    parse_network(text)  # its ValueError says why: not a CIDR, or a network never fetched
    return text


def _check_on_allowed_host(url: str, info: ValidationInfo) -> str:
    hosts = info.data.get("allowed_hosts")
    # When allowed_hosts itself is invalid, that error is the one worth reporting.
    if hosts is not None and urlsplit(url).hostname not in hosts:
        raise ValueError(f"host of {url!r} is not in allowed_hosts {hosts}")
    return url


SourceURL = Annotated[str, AfterValidator(normalize_url), AfterValidator(_check_on_allowed_host)]


class Discovery(BaseModel):
    """How to find report links on listing pages."""

    model_config = ConfigDict(extra="forbid")

    link_selector: str | None = None
    url_pattern: str | None = None
    next_selector: str | None = None
    max_depth: int = Field(default=3, ge=0)
    max_pages: int = Field(default=1000, ge=1)

    @field_validator("url_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.url_pattern) if self.url_pattern is not None else None


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # Declared before seeds and sitemaps so their validators can check against it.
    allowed_hosts: Annotated[list[Annotated[str, AfterValidator(_check_host)]], Field(min_length=1)]
    seeds: list[SourceURL] = []
    sitemaps: list[SourceURL] = []
    discovery: Discovery = Discovery()
    schedule: Annotated[str, AfterValidator(_check_schedule)]
    parser: Literal["auto", "refworld", "statedept", "generic"] = "auto"
    rate: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=2, ge=1)
    allow_private_networks: bool | list[Annotated[str, AfterValidator(_check_cidr)]] = False
    on_gone: Literal["delete", "flag"] = "delete"
    # A disabled source is never scheduled, but `sources run` still crawls it on demand.
    enabled: bool = True
    recheck_min: Annotated[str, AfterValidator(_check_duration)] = "1d"
    # Checked even when defaulted: recheck_min alone may exceed it.
    recheck_max: Annotated[str, AfterValidator(_check_duration), Field(validate_default=True)] = "30d"

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid name {value!r}: use lowercase letters, digits and '-'")
        return value

    @field_validator("allow_private_networks", mode="before")
    @classmethod
    def _bool_or_list(cls, value: Any) -> Any:
        # Checked before the union, which would otherwise report one error per branch.
        if not isinstance(value, bool | list):
            raise ValueError("must be true, false or a list of CIDRs such as ['127.0.0.1/32']")
        return value

    @field_validator("recheck_max")
    @classmethod
    def _max_not_below_min(cls, value: str, info: ValidationInfo) -> str:
        low = info.data.get("recheck_min")
        if low is not None and duration_seconds(value) < duration_seconds(low):
            raise ValueError(f"recheck_max {value!r} is shorter than recheck_min {low!r}")
        return value

    @property
    def recheck_min_seconds(self) -> int:
        return duration_seconds(self.recheck_min)

    @property
    def recheck_max_seconds(self) -> int:
        return duration_seconds(self.recheck_max)

    def celery_schedule(self) -> crontab | timedelta:
        if every := _EVERY.match(self.schedule):
            return timedelta(seconds=duration_seconds(every[1]))
        return crontab(**dict(zip(_CRON_FIELDS, self.schedule.split(" "), strict=True)))

    def allows_host(self, url: str) -> bool:
        host = urlsplit(url.strip()).hostname
        return host is not None and host.rstrip(".") in self.allowed_hosts

    @cached_property
    def private_networks(self) -> tuple[IPNetwork, ...]:
        """The non-public networks this source may reach: `true` means loopback, RFC 1918 and
        unique-local IPv6. Link-local and cloud metadata addresses are refused whatever it says."""
        if isinstance(self.allow_private_networks, bool):
            return PRIVATE_NETWORKS if self.allow_private_networks else ()
        return tuple(parse_network(cidr) for cidr in self.allow_private_networks)


class SourcesError(ValueError):
    """The sources file is invalid; the message names file, line and field."""


def _child(node: yaml.Node, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _branch_matches(tag: str, node: yaml.Node) -> bool:
    if tag.startswith("list["):
        return isinstance(node, yaml.SequenceNode)
    if tag.startswith("dict["):
        return isinstance(node, yaml.MappingNode)
    return isinstance(node, yaml.ScalarNode)


def _locate(node: yaml.Node, loc: tuple[str | int, ...]) -> tuple[int, str, bool]:
    """(1-based line, field path, whether the error is from a union branch the value is not shaped for).

    The line is the value's own, or that of the nearest enclosing node that
    exists (a missing field is reported at its source's first line). A
    pydantic union tags its errors with the branch type ('bool',
    'list[...]'): such tags are left out of the path, and an error from the
    list branch when the YAML holds a scalar is noise.
    """
    path, found, other_branch = "", True, False
    for key in loc:
        if isinstance(key, int):
            path += f"[{key}]"
        elif found and not isinstance(node, yaml.MappingNode):
            other_branch = other_branch or not _branch_matches(key, node)
            continue
        else:
            path += f".{key}"
        child = _child(node, key) if found else None
        if child is None:
            found = False
        else:
            node = child
    return node.start_mark.line + 1, path, other_branch


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r}"
    if error["type"] == "missing":
        return "required field is missing"
    return error["msg"].removeprefix("Value error, ")


def _report(item_node: yaml.Node, exc: ValidationError) -> list[tuple[int, str, str]]:
    """(line, field path, message) per error, without union-branch noise."""
    located = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        line, field, other_branch = _locate(item_node, loc)
        located.append((loc[:1], other_branch, (line, field, _message(error))))
    fields_with_real_errors = {top for top, other_branch, _ in located if not other_branch}
    return [report for top, other_branch, report in located
            if not other_branch or top not in fields_with_real_errors]


def _duplicate_keys(node: yaml.Node, path: str) -> None:
    """PyYAML keeps the last of two equal keys; a silently ignored setting is worse than an error."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise SourcesError(f"{path}:{key.start_mark.line + 1}: duplicate key {key.value!r}")
                seen.add(key.value)
            _duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, path)


def load_sources(path: Path) -> dict[str, Source]:
    """Read and validate the sources file.

    Raises SourcesError: for a YAML or layout problem the first one, otherwise
    every invalid field of every source, one per line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot read sources file: {exc}") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "?"
        raise SourcesError(f"{path}:{where}: YAML syntax error: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: YAML error: {exc}") from exc

    if root is None or not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        line = root.start_mark.line + 1 if root is not None else 1
        raise SourcesError(f"{path}:{line}: expected a top-level 'sources:' list")
    _duplicate_keys(root, str(path))
    if extra := [key for key, _ in root.value if key.value != "sources"]:
        raise SourcesError(f"{path}:{extra[0].start_mark.line + 1}: unknown top-level key {extra[0].value!r}")

    items_node = _child(root, "sources")
    problems: list[str] = []
    sources: dict[str, Source] = {}
    names_seen: set[str] = set()
    for index, raw in enumerate(data["sources"]):
        item_node = items_node.value[index]
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"sources[{index}]" + (f" ({name})" if isinstance(name, str) else "")
        if isinstance(name, str):
            if name in names_seen:
                line = _locate(item_node, ("name",))[0]
                problems.append(f"{path}:{line}: {label}.name: duplicate source name {name!r}")
            names_seen.add(name)
        try:
            source = Source.model_validate(raw)
        except ValidationError as exc:
            problems.extend(f"{path}:{line}: {label}{field}: {msg}" for line, field, msg in _report(item_node, exc))
            continue
        sources.setdefault(source.name, source)
    if problems:
        raise SourcesError("\n".join(problems))
    return sources
