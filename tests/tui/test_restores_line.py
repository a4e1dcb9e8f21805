"""The pane's line on restores, from the checks' "Restores" row (tui.widgets.env_pane)."""

from __future__ import annotations

from pathlib import Path

from stack_tui.core.environments import Platform
from stack_tui.core.parity import HYGIENE, CheckReport, CheckRow
from stack_tui.tui.widgets.env_pane import restores_text

PLATFORM = Platform(root=Path("/nonexistent"))


def report(row: CheckRow) -> CheckReport:
    return CheckReport((CheckRow(HYGIENE, "Backup dates", True), row))


def test_a_kept_copy_is_shown_with_how_to_swap_it_back() -> None:
    row = CheckRow(
        HYGIENE, "Restores", True, "no copy", "agent_db__before_20261201_150024 (82.4 MB)"
    )
    shown = restores_text(report(row), PLATFORM.prod)
    assert shown is not None
    assert "agent_db__before_20261201_150024 (82.4 MB)" in shown.plain
    assert "u: swap it back" in shown.plain
    assert restores_text(report(row), PLATFORM.dev) is None  # dev has none


def test_an_interrupted_restore_is_loud_in_its_own_pane_only() -> None:
    row = CheckRow(
        HYGIENE,
        "Restores",
        False,
        "no copy",
        "Postgres not running",
        "dev: agent_db_dev__restoring was left by an interrupted restore "
        "(fix: ./stack backup repair --dev)",
    )
    shown = restores_text(report(row), PLATFORM.dev)
    assert shown is not None
    assert "INTERRUPTED RESTORE" in shown.plain and "backup repair --dev" in shown.plain
    assert restores_text(report(row), PLATFORM.prod) is None


def test_no_checks_yet_shows_nothing() -> None:
    assert restores_text(None, PLATFORM.dev) is None
