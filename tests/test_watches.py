"""The watches file: validated like the sources file, every mistake with file, line and field."""

from __future__ import annotations

import pytest

from workers.watches.alerts import Alert, alert_id
from workers.watches.config import WatchesError, load_watches


def test_a_valid_file_gives_each_watch_its_destination_and_policy(tmp_path, monkeypatch) -> None:
    path = tmp_path / "watches.yaml"
    path.write_text("""watches:
  - name: west-africa
    countries: [Ghana, NG]
    tiers: [Tier 3]
    webhook: https://hooks.example.org/tip
    secret_header: X-Token
    secret_env: TIP_TOKEN
  - name: quiet
    query: forced labor
""")
    watches = load_watches(path)
    assert watches["quiet"].destination == "log" and watches["quiet"].headers() == {}
    monkeypatch.setenv("TIP_TOKEN", "abc")
    assert watches["west-africa"].headers() == {"X-Token": "abc"}
    assert watches["west-africa"].policy().networks == ()


def test_every_mistake_is_reported_with_file_line_and_field(tmp_path) -> None:
    path = tmp_path / "watches.yaml"
    path.write_text("""watches:
  - name: Bad Name
    webhook: ftp://x
  - name: ok
    allow_networks: [169.254.169.254/32]
    colour: red
  - name: ok
""")
    with pytest.raises(WatchesError) as caught:
        load_watches(path)
    lines = str(caught.value).splitlines()
    assert any(line.startswith(f"{path}:2: watches[0].name: invalid name 'Bad Name'") for line in lines), lines
    assert any(line.startswith(f"{path}:3: watches[0].webhook: invalid webhook 'ftp://x'") for line in lines), lines
    assert any(line.startswith(f"{path}:5: watches[1].allow_networks[0]:") for line in lines), lines
    assert any(line.startswith(f"{path}:6: watches[1].colour: unknown key 'colour'") for line in lines), lines
    assert any(line.startswith(f"{path}:7: watches[2].name: duplicate watch name 'ok'") for line in lines), lines


def test_a_secret_header_needs_its_environment_variable(tmp_path) -> None:
    path = tmp_path / "watches.yaml"
    path.write_text("watches:\n  - name: a\n    webhook: https://h.example/x\n    secret_header: X-Token\n")
    with pytest.raises(WatchesError, match=r":2: watches\[0\]: .*secret_header and secret_env go together"):
        load_watches(path)


def test_one_alert_per_watch_report_and_tier_round_trips() -> None:
    alert = Alert("w", "trafficking-in-persons-2024-PER", "new", "Tier 2", "up", "log", {"title": "T"})
    assert Alert.from_source(alert.to_source()) == alert
    assert alert.id == alert_id("w", "trafficking-in-persons-2024-PER", "Tier 2") != alert_id(
        "w", "trafficking-in-persons-2024-PER", "Tier 3")


def test_a_webhook_on_a_network_the_watch_did_not_open_is_refused_before_connecting(tmp_path) -> None:
    from workers.settings import Settings
    from workers.watches.tasks import DeliveryFailed, post

    path = tmp_path / "watches.yaml"
    path.write_text("watches:\n  - name: local\n    webhook: http://127.0.0.1:9/hook\n"
                    "  - name: metadata\n    webhook: http://169.254.169.254/latest\n    allow_networks: [127.0.0.1/32]\n")
    settings = Settings(watches_file=path)
    for name, reason in (("local", "private_address"), ("metadata", "link_local_address")):
        alert = Alert(name, "k", "new", None, "new", load_watches(path)[name].destination, {})
        with pytest.raises(DeliveryFailed, match=reason):
            post(alert, settings)
