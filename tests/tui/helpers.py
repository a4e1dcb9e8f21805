"""Waiting on the app's own state (never a fixed sleep): poll between Textual pauses."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot
from textual.screen import Screen

from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.main import MainScreen


async def until(pilot: Pilot[int], condition: Callable[[], object], timeout: float = 10.0,
                what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or condition}")
        await pilot.pause(0.02)


async def settled(pilot: Pilot[int]) -> MainScreen:
    """Both panes read and the checks done: the state a snapshot may be taken in."""
    app = pilot.app
    assert isinstance(app, StackApp)
    main = app.main
    await until(pilot, lambda: len(main.statuses) == 2 and not main.checks_running,
                what="both panes populated and the checks done")
    await pilot.pause()
    return main


async def screen_is(pilot: Pilot[int], kind: type[Screen[object]], timeout: float = 10.0) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, kind), timeout,
                what=f"{kind.__name__} on top")
