"""Waiting on the app's own state (never a fixed sleep): poll between Textual pauses."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.screen import Screen

from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.main import MainScreen
from support import until


async def settled(pilot: Pilot[int]) -> MainScreen:
    """Both panes read and the checks done: the state a snapshot may be taken in."""
    app = pilot.app
    assert isinstance(app, StackApp)
    main = app.main
    session = main.session
    await until(  # the checks start after the first paint: wait for their first result
        pilot,
        lambda: (
            len(session.statuses) == 2
            and (session.checks is not None or bool(session.checks_error))
            and not session.checks_running
        ),
        what="both panes populated and the checks done",
    )
    await pilot.pause()
    return main


async def screen_is(pilot: Pilot[int], kind: type[Screen[object]], timeout: float = 10.0) -> None:
    await until(
        pilot, lambda: isinstance(pilot.app.screen, kind), timeout, what=f"{kind.__name__} on top"
    )
