"""The watches file: a search (query, countries, series, tiers) and where to tell (a webhook, or
the log only), validated on load with file, line and field for every mistake.

```yaml
watches:
  - name: west-africa
    countries: [Ghana, NG]          # names or ISO codes; empty: any
    series: [Trafficking in Persons Report]
    tiers: [Tier 2 Watch List, Tier 3]
    query: "forced labor"           # search syntax, as `report-ingest search`
    webhook: https://hooks.example.org/tip     # omitted: the worker's log only
    secret_header: X-Webhook-Token  # sent with the value of the environment variable secret_env
    secret_env: TIP_WEBHOOK_TOKEN
    allow_networks: [10.0.0.0/8]    # non-public networks the webhook may be on, as for sources
```
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from workers.crawl.netpolicy import NetworkPolicy, networks_policy
from workers.crawl.sources import _check_cidr, _child, _duplicate_keys, _locate, _report

_NAME = re.compile(r"^[a-z0-9-]+$")
_HEADER = re.compile(r"^[A-Za-z0-9-]+$")


class WatchesError(ValueError):
    """The watches file is invalid; the message names file, line and field."""


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"invalid name {value!r}: use lowercase letters, digits and '-'")
    return value


def _check_webhook(value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"invalid webhook {value!r}: an http(s) URL")
    return value


class Watch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(_check_name)]
    query: str = ""
    countries: list[str] = []
    series: list[str] = []
    tiers: list[str] = []
    webhook: Annotated[str, AfterValidator(_check_webhook)] | None = None
    secret_header: str | None = None
    secret_env: str | None = None
    allow_networks: list[Annotated[str, AfterValidator(_check_cidr)]] = []

    @model_validator(mode="after")
    def _secret_pairs(self) -> Watch:
        if (self.secret_header is None) != (self.secret_env is None):
            raise ValueError("secret_header and secret_env go together: the header's name, and the "
                             "environment variable that holds its value")
        if self.secret_header is not None and not _HEADER.match(self.secret_header):
            raise ValueError(f"invalid secret_header {self.secret_header!r}: a header name")
        if self.secret_header is not None and self.webhook is None:
            raise ValueError("secret_header without a webhook")
        return self

    @property
    def destination(self) -> str:
        return self.webhook or "log"

    def policy(self) -> NetworkPolicy:
        return networks_policy(self.allow_networks)

    def headers(self) -> dict[str, str]:
        if self.secret_header is None:
            return {}
        value = os.environ.get(self.secret_env or "")
        if not value:
            raise LookupError(f"watch {self.name}: environment variable {self.secret_env} is not set")
        return {self.secret_header: value}


def load_watches(path: Path) -> dict[str, Watch]:
    """Every watch of the file by name. Raises WatchesError with every invalid field, one per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise WatchesError(f"{path}: cannot read watches file: {exc}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise WatchesError(f"{path}:{mark.line + 1 if mark else '?'}: YAML syntax error: {exc.problem}") from exc
    if root is None or not isinstance(data, dict) or not isinstance(data.get("watches"), list):
        raise WatchesError(f"{path}:{root.start_mark.line + 1 if root is not None else 1}: "
                           "expected a top-level 'watches:' list")
    _duplicate_keys(root, str(path))
    items = _child(root, "watches")
    problems: list[str] = []
    watches: dict[str, Watch] = {}
    names_seen: set[str] = set()
    for index, raw in enumerate(data["watches"]):
        label, name = f"watches[{index}]", raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str):
            if name in names_seen:
                problems.append(f"{path}:{_locate(items.value[index], ('name',))[0]}: {label}.name: "
                                f"duplicate watch name {name!r}")
            names_seen.add(name)
        try:
            watch = Watch.model_validate(raw)
        except ValidationError as exc:
            problems += [f"{path}:{line}: {label}{field}: {msg}" for line, field, msg in _report(items.value[index], exc)]
            continue
        watches.setdefault(watch.name, watch)
    if problems:
        raise WatchesError("\n".join(problems))
    return watches
