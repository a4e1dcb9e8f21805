"""Staleness limits: parsing, defaults, and which backups count."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from stack_tui.core import backups, drills, staleness
from stack_tui.core.errors import Refused

HOUR = 3600.0


def info(hours_ago: float, drill_ok: bool | None = None) -> backups.BackupInfo:
    taken = datetime.fromtimestamp(time.time() - hours_ago * HOUR).replace(microsecond=0)
    record = None if drill_ok is None else drills.DrillRecord(drill_ok, "", time.time(), 1.0)
    return backups.BackupInfo(
        Path(backups.backup_name("prod", taken)), "prod", taken, 1, drill=record
    )


def test_defaults_prod_on_dev_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in staleness.DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    assert staleness.limits({}, "prod") == staleness.Limits(26 * HOUR, 8 * 24 * HOUR)
    assert staleness.limits({}, "dev") == staleness.Limits(None, None)
    assert staleness.limits({"STACK_DEV_MAX_BACKUP_AGE": "90m"}, "dev").backup == 90 * 60
    monkeypatch.setenv("STACK_DEV_MAX_BACKUP_AGE", "2h")  # the process environment wins
    assert staleness.limits({"STACK_DEV_MAX_BACKUP_AGE": "90m"}, "dev").backup == 2 * HOUR


@pytest.mark.parametrize("raw", ["26", "1 week", "-3h", "0h", "h"])
def test_malformed_limit_names_the_variable(raw: str) -> None:
    with pytest.raises(Refused, match="STACK_PROD_MAX_BACKUP_AGE"):
        staleness.limits({"STACK_PROD_MAX_BACKUP_AGE": raw}, "prod")


def test_which_backups_count() -> None:
    limits = staleness.Limits(26 * HOUR, 8 * 24 * HOUR)
    assert staleness.evaluate("prod", [info(2, drill_ok=True)], limits) == []
    [stale] = staleness.evaluate("prod", [info(30, drill_ok=True)], limits)
    assert stale.what == "backup" and stale.message().startswith("prod: newest good backup is 1d")
    # A newer backup whose drill failed is not a good one; an older drilled one still counts
    # for the drill limit.
    found = [info(1, drill_ok=False), info(27, drill_ok=True)]
    assert [s.what for s in staleness.evaluate("prod", found, limits)] == ["backup"]
    [none] = staleness.evaluate("prod", [info(1)], limits)
    assert none.what == "drill" and none.message() == "prod: no drilled backup at all (limit 8d)"
    assert [s.what for s in staleness.evaluate("prod", [], limits)] == ["backup", "drill"]
    assert staleness.evaluate("dev", [], staleness.Limits(None, None)) == []
