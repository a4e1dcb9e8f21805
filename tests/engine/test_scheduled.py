"""Scheduled backups, staleness and the units that schedule them, on the real engine."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from stack_tui import cli
from stack_tui.core import audit, backups, compose, drills, locks
from stack_tui.core.environments import Platform
from stack_tui.ops.check import run_checks
from support import destroy, engine_or_skip, make_platform, skip_or_fail

pytestmark = pytest.mark.engine


@pytest.fixture
def dev_platform(tmp_path: Path) -> Iterator[Platform]:
    engine_or_skip()
    made = make_platform(
        tmp_path,
        STACK_DEV_MAX_BACKUP_AGE="26h",
        STACK_DEV_MAX_DRILL_AGE="8d",
        STACK_DEV_DRILL_AFTER_BACKUP="on",
        STACK_SCHEDULE_LOCK_WAIT="2s",
    )
    try:
        compose.run(made.dev, "up", "-d", "--wait")
        yield made
    finally:
        destroy(made)


def age_backup(path: Path, hours: float) -> Path:
    """Give a backup (and its sidecars) the name it would have had `hours` ago."""
    parsed = backups.parse_name(path.name)
    assert parsed is not None
    older = path.with_name(backups.backup_name(parsed[0], parsed[1] - timedelta(hours=hours)))
    for side in (drills.sidecar, drills.manifest):
        if side(path).exists():
            side(path).rename(side(older))
    path.rename(older)
    return older


def audited(platform: Platform, operation: str) -> list[dict[str, object]]:
    return [e for e in audit.read(platform.audit_log) if e["operation"] == operation]


def test_scheduled_backup_staleness_and_lock_wait(
    dev_platform: Platform, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = dev_platform
    monkeypatch.setattr(cli.out, "width", 250)
    # No backup at all: stale, loudly, with its own exit code.
    assert cli.main(["status", "--dev"], platform=platform) == cli.EXIT_STALE
    said = capsys.readouterr().out
    assert "STALE: dev: no good backup at all (limit 1d2h)" in said
    assert "STALE: dev: no drilled backup at all (limit 8d)" in said
    [row] = [r for r in run_checks(platform).rows if r.name == "backups fresh"]
    assert not row.ok and row.dev == "STALE" and row.prod == "STALE"

    # A scheduled run: quiet on success, audited as scheduled, drilled, fresh afterwards.
    assert cli.main(["backup", "--scheduled", "--dev"], platform=platform) == cli.EXIT_OK
    assert capsys.readouterr() == ("", "")
    [line] = audited(platform, "backup")
    assert line["arguments"] == {"keep": backups.DEFAULT_KEEP, "reason": "scheduled"}
    assert line["result"] == "ok"
    assert [e["result"] for e in audited(platform, "drill")] == ["ok"]
    [newest] = backups.list_backups(platform.backups_dir, "dev")
    assert newest.drill is not None and newest.drill.ok
    assert cli.main(["status", "--dev"], platform=platform) == cli.EXIT_OK
    assert "last drill:" in capsys.readouterr().out

    # Set 30 hours in the past: the backup limit is crossed, the drill one (8 days) is not.
    age_backup(newest.path, 30)
    assert cli.main(["status", "--dev"], platform=platform) == cli.EXIT_STALE
    said = capsys.readouterr().out
    assert "STALE: dev: newest good backup is 1d6h old (limit 1d2h)" in said
    assert "drilled backup" not in said

    # A TUI dialog (or a deploy) holds the lock: the scheduled run waits, then skips.
    with locks.hold(platform.locks_dir, platform.dev.project, "dev", "restore"):
        assert cli.main(["backup", "--scheduled", "--dev"], platform=platform) == cli.EXIT_OK
    said = capsys.readouterr().out
    assert said.startswith("Skipped the scheduled dev backup: dev is busy: restore by")
    assert "(waited 2 s)" in said and "The next scheduled run tries again." in said
    assert audited(platform, "backup")[-1]["result"] == "skipped"

    # Released while it waits: the run goes ahead.
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with locks.hold(platform.locks_dir, platform.dev.project, "dev", "deploy"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    assert cli.main(["backup", "--scheduled", "--dev"], platform=platform) == cli.EXIT_OK
    thread.join()
    assert capsys.readouterr().out == ""
    assert audited(platform, "backup")[-1]["result"] == "ok"


def test_schedule_units_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    platform = make_platform(tmp_path)
    assert cli.main(["schedule", "show"], platform=platform) == cli.EXIT_OK
    shown = capsys.readouterr().out
    for name in (
        "stack-backup-prod.service",
        "stack-backup-prod.timer",
        "stack-backup-dev.service",
        "stack-backup-dev.timer",
    ):
        assert name in shown
    assert f"15 3 * * * cd {platform.root} && {platform.root}/stack backup --scheduled\n" in shown
    assert "backup --scheduled --dev" in shown
    units = tmp_path / "units"
    assert (
        cli.main(["schedule", "install", "--unit-dir", str(units)], platform=platform)
        == cli.EXIT_OK
    )
    written = sorted(units.iterdir())
    assert len(written) == 4
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        skip_or_fail("needs systemd-analyze (apt-get install systemd) to verify the units")
    assert analyze is not None
    done = subprocess.run(
        [analyze, "verify", *map(str, written)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # The check is real: a broken unit fails it.
    broken = units / "stack-backup-prod.timer"
    broken.write_text(broken.read_text().replace("03:15:00", "27:15:00"))
    done = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "calendar" in done.stderr


def test_schedule_install_without_systemd_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stack_tui.core import schedule

    monkeypatch.setattr(schedule, "SYSTEMD_RUNNING", tmp_path / "no-systemd")
    platform = make_platform(tmp_path)
    assert cli.main(["schedule", "install"], platform=platform) == cli.EXIT_REFUSED
    assert "systemd is not running" in capsys.readouterr().err
