"""The TUI's restore picker with off-host copies: a copy only off-host is listed, marked,
fetched and restored (real restic, real PostgreSQL, Textual's pilot)."""

from __future__ import annotations

import pytest
from helpers import screen_is, until
from test_engine import SIZE, confirm_typing, finished, live
from textual.widgets import Input

from offsite import conftest as offsite_fixtures
from offsite.conftest import Repo
from offsite.test_offsite import NOTES, init, take_backup
from stack_tui.core.environments import Platform
from stack_tui.live.backend import LiveBackend
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.restore import PickerTable, RestorePicker
from support import psql

pytestmark = pytest.mark.engine

# The off-host suite's fixtures: a platform with Postgres, a local restic repository.
pgdb, pg, local_repo = offsite_fixtures.pgdb, offsite_fixtures.pg, offsite_fixtures.local_repo


async def test_restore_an_off_host_only_copy_from_the_picker(
    pg: Platform, local_repo: Repo
) -> None:
    init(pg)
    path = take_backup(pg)
    rows = psql(pg, "dev", NOTES)
    path.unlink()
    psql(pg, "dev", "UPDATE notes SET body = 'changed'")
    app = StackApp(LiveBackend(pg))
    async with app.run_test(size=SIZE) as pilot:
        main = await live(pilot)
        await pilot.press("1")  # the dev pane
        await until(pilot, lambda: main.env.name == "dev", what="dev selected")
        await pilot.press("r")
        await screen_is(pilot, RestorePicker)
        picker = app.screen
        assert isinstance(picker, RestorePicker)
        await until(pilot, lambda: bool(picker.remote), 30, "the off-host copy listed")
        table = picker.query_one(PickerTable)
        assert str(path) in table.offsite_only
        note = str(picker.query_one("#offsite-note").render())
        assert "off-host" in note
        await pilot.press("enter")
        # fetched first; then the restore's question, typed once its input has the focus
        await until(pilot, lambda: isinstance(app.focused, Input), 60, "the typing input")
        await confirm_typing(pilot, "dev", "Restore dev_")
        result = await finished(pilot, main, "dev")
        assert result.ok, (result.summary, result.details)
    assert psql(pg, "dev", NOTES) == rows
    assert path.is_file()
