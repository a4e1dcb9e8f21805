"""The pane's line on off-host copies: the last copy's age and state, a failure loud, never
kept current by a ticking timer (the data watcher's part: tests/tui/test_watchers.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import fakes
from helpers import settled
from textual.widgets import Static

from stack_tui.core.environments import Platform
from stack_tui.ops import offsite
from stack_tui.ops.offsite import PaneState
from stack_tui.tui.app import StackApp
from stack_tui.tui.widgets.env_pane import offsite_text

PLATFORM = Platform(root=Path("/nonexistent"))
HOUR = 3600.0


def test_a_good_copy_shows_its_age_and_what_it_did() -> None:
    state = PaneState(True, "to sftp:backup@vault:/srv/repo", 0.0)
    shown = offsite_text(state, PLATFORM.dev, now=5 * HOUR + 60)
    assert shown is not None
    assert shown.plain == "✓ off-host: copied 5h ago to sftp:backup@vault:/srv/repo"
    assert offsite_text(None, PLATFORM.dev, now=0.0) is None, "off: no line"


def test_a_failed_copy_is_loud_with_the_command_that_retries_it() -> None:
    state = PaneState(False, "The off-host repository /srv/repo is unreachable", 0.0)
    shown = offsite_text(state, PLATFORM.prod, now=HOUR / 2)
    assert shown is not None
    assert "OFF-HOST COPY FAILED" in shown.plain and "<1h ago" in shown.plain
    assert "unreachable" in shown.plain and "retry: ./stack offsite push\n" not in shown.plain
    assert shown.plain.endswith("retry: ./stack offsite push")
    nothing = offsite_text(PaneState(False, "nothing copied yet", None), PLATFORM.dev, 0.0)
    assert nothing is not None and "NO OFF-HOST COPY" in nothing.plain
    assert nothing.plain.endswith("offsite push --dev")


def test_the_recorded_state_is_what_the_pane_reads(tmp_path: Path) -> None:
    platform = Platform(root=fakes.REPO, data_dir=tmp_path / "data", env_file=tmp_path / ".env")
    (tmp_path / "data" / "backups").mkdir(parents=True)
    assert offsite.pane_state(platform, platform.dev) is None, "off"
    password = tmp_path / "pw"
    password.write_text("x")
    password.chmod(0o600)
    (tmp_path / ".env").write_text(
        f"STACK_OFFSITE_REPOSITORY={tmp_path / 'repo'}\nSTACK_OFFSITE_PASSWORD_FILE={password}\n"
    )
    assert offsite.pane_state(platform, platform.dev) == PaneState(
        True, f"no backup to copy yet ({tmp_path / 'repo'})", None
    )
    recorded = offsite._record(platform, platform.dev, ok=False, detail="repository locked")
    state = offsite.pane_state(platform, platform.dev)
    assert state == PaneState(False, "repository locked", recorded.at)
    detail = "1 uploaded, 2 off-host copies kept; 1 damaged or vanished local backup(s) not copied"
    recorded = offsite._record(platform, platform.dev, ok=True, detail=detail)
    assert offsite.pane_state(platform, platform.dev) == PaneState(
        True,
        f"to {tmp_path / 'repo'}; 1 damaged or vanished local backup(s) not copied",
        recorded.at,
    )
    password.chmod(0o644)
    state = offsite.pane_state(platform, platform.dev)
    assert state is not None and not state.ok and "readable by others" in state.text


async def test_the_pane_shows_a_failed_copy_and_no_timer_ticks_for_it() -> None:
    platform = fakes.make_platform()
    failed = PaneState(False, "The off-host repository /srv/repo is unreachable", fakes.NOW - 60)
    statuses = {
        "dev": replace(fakes.healthy(platform, "dev"), offsite=failed),
        "prod": fakes.healthy(platform, "prod"),
    }
    app = StackApp(fakes.FixedBackend(platform, statuses))
    async with app.run_test(size=(120, 40)) as pilot:
        main = await settled(pilot)
        line = main.pane("dev").part("offsite", Static)
        assert line.display and "OFF-HOST COPY FAILED" in str(line.render())
        assert not main.pane("prod").part("offsite", Static).display, "off: no line"
        running = [
            timer
            for node in (app, main, *main.query("*"))
            for timer in node._timers
            if timer._task is not None and not timer._task.done() and timer._active.is_set()
        ]
        # At most the one-shot redraw for when a shown age (this one's too) reads otherwise.
        assert [(timer.name, timer._repeat) for timer in running] in ([], [("ages", 0)])
