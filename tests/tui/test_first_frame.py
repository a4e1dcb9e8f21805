"""The first frame draws both panes as one PanesSnapshot; the real panes that take its
place right after must show the very same screen, every cell and every style (compared
unfocused: the focus comes with the real table, as it came after the first frame before).
And a key pressed before the swap acts as it does after."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import fakes
import pytest
from helpers import screen_is, settled
from rich.style import Style as RichStyle
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header

from stack_tui.ops.status import EnvStatus
from stack_tui.tui.app import StackApp
from stack_tui.tui.screens.logs import LogsScreen
from stack_tui.tui.screens.main import MainScreen
from stack_tui.tui.widgets.env_pane import EnvPane
from stack_tui.tui.widgets.footer_snapshot import FooterSnapshot
from stack_tui.tui.widgets.pane_snapshot import PanesSnapshot
from stack_tui.tui.widgets.title_bar import TitleBar

APP_CSS = Path(inspect.getfile(StackApp)).with_name("app.tcss")
State = Callable[[Any, str], EnvStatus]
STATES: dict[str, tuple[State, State]] = {
    "healthy": (fakes.healthy, fakes.healthy),
    "unreachable": (fakes.unreachable, fakes.healthy),
    "missing-volume": (fakes.healthy, fakes.missing_volume),
    "many-backups": (fakes.many_backups, fakes.many_backups),
    "drilled-and-stale": (fakes.drilled_and_stale, fakes.died),
}
#: At 80x24 one pane shows (and the backups table scrolls); at 200x50 the backups fill it.
CASES = [
    ("healthy", (80, 24)),
    ("healthy", (121, 40)),
    ("many-backups", (80, 24)),
    ("many-backups", (200, 50)),
    ("missing-volume", (120, 40)),
    ("drilled-and-stale", (120, 40)),
]


async def once_settled(pilot: Pilot[int], read: Callable[[], Any], what: str) -> Any:
    """What `read()` returns once two reads agree (a read between a content change and its
    layout would compare a half-done screen)."""
    cells = read()
    for _ in range(50):
        await pilot.pause()
        again = read()
        if again == cells:
            return cells
        cells = again
    raise AssertionError(f"{what} did not settle")


async def pane_cells(pilot: Pilot[int]) -> list[list[tuple[str, str]]]:
    """Every cell of the panes' area (what the swap touches; the footer composes its keys
    meanwhile): character and style, as the terminal gets them."""
    app = pilot.app
    assert isinstance(app, StackApp)
    main = app.main
    region = next(iter(main.query("#panes-snapshot, #panes"))).region

    def read() -> list[list[tuple[str, str]]]:
        strips = app.screen._compositor.render_strips()[region.y : region.bottom]
        return [[(char, str(seg.style)) for seg in strip for char in seg.text] for strip in strips]

    cells: list[list[tuple[str, str]]] = await once_settled(pilot, read, "the screen")
    return cells


def app_for(state: str) -> StackApp:
    dev, prod = STATES[state]
    platform = fakes.make_platform()
    return StackApp(
        fakes.FixedBackend(platform, {"dev": dev(platform, "dev"), "prod": prod(platform, "prod")})
    )


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Callable[[MainScreen], Any]:
    """The first frame's snapshot stays until the test swaps the panes in (returns the
    real swap)."""
    swap = MainScreen._swap_panes

    async def later(self: MainScreen) -> None:
        pass

    monkeypatch.setattr(MainScreen, "_swap_panes", later)
    return swap


@pytest.mark.parametrize(("state", "size"), CASES, ids=[f"{s}-{w}x{h}" for s, (w, h) in CASES])
async def test_the_swap_changes_nothing_on_screen(
    state: str, size: tuple[int, int], held: Callable[[MainScreen], Any]
) -> None:
    app = app_for(state)
    async with app.run_test(size=size) as pilot:
        main = await settled(pilot)
        assert main.query(PanesSnapshot), "the first frame shows the snapshot"
        assert not main.query(EnvPane)
        first = await pane_cells(pilot)
        await held(main)
        await pilot.pause()
        assert app.focused is main.pane(main.current).services, "the real table has the focus"
        app.set_focus(None)  # compared unfocused, as the first frame showed them
        await pilot.pause()
        assert not main.query(PanesSnapshot), "the real panes took its place"
        swapped = await pane_cells(pilot)
        for y, (before, after) in enumerate(zip(first, swapped, strict=True)):
            assert after == before, f"line {y} changed"


#: What the snapshot cannot draw: a pane taller than its box (only the real pane scrolls),
#: a problem box. The real panes take its place before the usual swap would.
UNDRAWABLE = [("healthy", (60, 16)), ("unreachable", (120, 40))]


@pytest.mark.parametrize(("state", "size"), UNDRAWABLE, ids=["taller-than-its-box", "problem"])
async def test_what_the_snapshot_cannot_draw_the_real_panes_show_at_once(
    state: str, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def not_yet(self: MainScreen) -> None:
        pass

    monkeypatch.setattr(MainScreen, "_after_first_frame", not_yet)
    dev, prod = STATES[state]
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": dev(platform, "dev"), "prod": prod(platform, "prod")}
    )
    async with app_run(StackApp(backend), size) as main:
        assert not main.query(PanesSnapshot)
        assert main.pane("dev").is_mounted and main.pane("prod").is_mounted
    # The control: what it can draw stays drawn until the usual swap.
    async with app_run(app_for("healthy"), (120, 40)) as main:
        assert main.query(PanesSnapshot) and not main.query(EnvPane)


@contextlib.asynccontextmanager
async def app_run(app: StackApp, size: tuple[int, int]) -> AsyncIterator[MainScreen]:
    """The app's main screen, both panes read, the checks done."""
    async with app.run_test(size=size) as pilot:
        main = await settled(pilot)
        await pilot.pause()
        yield main


async def test_a_key_pressed_before_the_swap_acts_on_the_real_table(
    held: Callable[[MainScreen], Any],
) -> None:
    app = app_for("healthy")
    async with app.run_test(size=(120, 40)) as pilot:
        main = await settled(pilot)
        assert main.query(PanesSnapshot)
        await pilot.press("l")
        await screen_is(pilot, LogsScreen)
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.services == ["agent"]


async def test_the_first_frame_shows_both_panes_and_the_footers_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the launch benchmark waits for is all there in the first frame sent to the
    terminal: Textual's footer would add its keys frames later, after the first focus."""
    frames: list[str] = []
    display = App._display

    def first(self: App[Any], screen: Screen[Any], renderable: Any) -> None:
        if not frames and isinstance(screen, MainScreen) and renderable is not None:
            strips = screen._compositor.render_strips()
            frames.append("\n".join("".join(seg.text for seg in strip) for strip in strips))
        display(self, screen, renderable)

    monkeypatch.setattr(App, "_display", first)
    app = app_for("healthy")
    backend = app.backend
    assert isinstance(backend, fakes.FixedBackend)
    # As LiveBackend's: both read while Textual was imported.
    monkeypatch.setattr(backend, "prefetched", lambda env: backend.statuses[env.name])
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
    frame = frames[0]
    assert "Services (4/4 ok)" in frame and "Services (5/5 ok)" in frame, frame
    assert "d Deploy" in frame and "q Quit" in frame, frame


async def footer_cells(pilot: Pilot[int]) -> list[tuple[str, str]]:
    """The footer's line, character and style."""
    app = pilot.app
    y = app.screen.size.height - 1

    def read() -> list[tuple[str, str]]:
        strip = app.screen._compositor.render_strips()[y]
        return [(char, str(seg.style)) for seg in strip for char in seg.text]

    cells: list[tuple[str, str]] = await once_settled(pilot, read, "the footer")
    return cells


FOOTER_CASES = [
    ((80, 24), False),
    ((100, 30), False),
    ((120, 40), False),
    ((200, 50), False),
    ((120, 40), True),
]


@pytest.mark.parametrize(
    ("size", "read_only"),
    FOOTER_CASES,
    ids=[f"{w}x{h}{'-read-only' if r else ''}" for (w, h), r in FOOTER_CASES],
)
async def test_the_footer_swap_changes_nothing_on_screen(
    size: tuple[int, int], read_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    swap = MainScreen._swap_footer

    async def later(self: MainScreen) -> None:
        pass

    monkeypatch.setattr(MainScreen, "_swap_footer", later)
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    app = StackApp(backend, read_only=read_only)
    async with app.run_test(size=size) as pilot:
        main = await settled(pilot)
        assert main.query(FooterSnapshot), "the first frame shows the stand-in"
        first = await footer_cells(pilot)
        await swap(main)
        assert not main.query(FooterSnapshot) and main.query(Footer)
        swapped = await footer_cells(pilot)
    text = "".join(char for char, _ in first)
    assert ("d Deploy" in text) is not read_only, text
    assert "q Quit" in text and "? Help" in text, text  # what fits: quit and help always
    assert swapped == first, f"{text!r} became {''.join(char for char, _ in swapped)!r}"


class HeaderLine(App[None]):
    """Textual's Header as the main screen had it (no clock, no icon), or the TitleBar that
    took its place, with the main screen's read-only rule for either."""

    TITLE = StackApp.TITLE
    READ_ONLY = APP_CSS.read_text().split("TitleBar.-read-only", 1)[1].split("}", 1)[0]
    CSS = f"Header.-read-only, TitleBar.-read-only {READ_ONLY}}}"

    def __init__(self, widget: Widget, sub_title: str, read_only: bool) -> None:
        super().__init__()
        self.widget = widget
        self.sub_title = sub_title
        widget.set_class(read_only, "-read-only")

    def compose(self) -> ComposeResult:
        yield self.widget


def shown(char: str, style: RichStyle | None) -> tuple[str, str]:
    """A cell as it looks: a blank's foreground colour shows nowhere (Header's icon draws
    its blanks in the text colour, the TitleBar in none), its background does."""
    style = style or RichStyle()
    if char == " ":
        background = style.color if style.reverse else style.bgcolor
        return char, str(RichStyle(bgcolor=background))
    return char, str(style)


HEADER_CASES = [(80, False), (120, True), (200, True), (40, True), (12, False)]


@pytest.mark.parametrize(("width", "read_only"), HEADER_CASES)
async def test_the_title_bar_draws_textuals_header_line(width: int, read_only: bool) -> None:
    sub_title = "READ-ONLY: no deploy, backup or restore" if read_only else ""
    lines = []
    for widget in (Header(show_clock=False, icon=""), TitleBar()):
        app = HeaderLine(widget, sub_title, read_only)
        async with app.run_test(size=(width, 3)) as pilot:
            await pilot.pause()
            strip = app.screen._compositor.render_strips()[0]
            lines.append([shown(char, seg.style) for seg in strip for char in seg.text])
    header, title_bar = lines
    text = "".join(char for char, _ in header)
    assert ("stack-tui" in text) is (width >= 40), text  # 12 columns: cut, with an ellipsis
    assert title_bar == header, f"{text!r} became {''.join(c for c, _ in title_bar)!r}"


async def test_the_footer_shows_what_fits_as_the_terminal_is_resized() -> None:
    """Quit and help stay in sight on a narrow terminal (the keys left out still work); the
    others come back, with the command palette's key, when it is wide again."""
    platform = fakes.make_platform()
    backend = fakes.FixedBackend(
        platform, {"dev": fakes.healthy(platform, "dev"), "prod": fakes.healthy(platform, "prod")}
    )
    app = StackApp(backend)
    async with app.run_test(size=(200, 50)) as pilot:
        await settled(pilot)
        wide = "".join(char for char, _ in await footer_cells(pilot))
        assert "^r Refresh" in wide and "^p palette" in wide, wide
        for width, height in ((80, 24), (100, 30), (200, 50)):
            await pilot.resize_terminal(width, height)
            text = "".join(char for char, _ in await footer_cells(pilot))
            assert "q Quit" in text and "? Help" in text, (width, text)
            assert ("^p palette" in text) is (width >= 100), (width, text)
        assert text == wide
        await pilot.resize_terminal(80, 24)
        await pilot.press("ctrl+r")  # left out of the footer, still bound
        await pilot.pause()
        assert any("Re-reading" in str(n.message) for n in app._notifications), "ctrl+r did nothing"
