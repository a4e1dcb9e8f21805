"""The live model (stack_tui.live) and the TUI's wording stay Textual-free, so they are
testable and reusable without a terminal; only app, screens, widgets and messages import
Textual. And what the first frame needs does not import docker-py (its HTTP stack costs
more than the whole first snapshot)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import stack_tui.live

UI_FREE = [
    "stack_tui.tui",
    "stack_tui.tui.plans",
    "stack_tui.live",
    *(f"stack_tui.live.{m.name}" for m in pkgutil.iter_modules(stack_tui.live.__path__)),
]
FIRST_FRAME = ["stack_tui.tui.app", "stack_tui.tui.screens.main", "stack_tui.live.backend"]


def loaded_after(modules: list[str], prefixes: tuple[str, ...]) -> str:
    probe = (
        "import sys, importlib\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_live_package_is_listed() -> None:
    assert "stack_tui.live.session" in UI_FREE


@pytest.mark.parametrize("module", UI_FREE)
def test_module_does_not_import_textual(module: str) -> None:
    assert loaded_after([module], ("textual",)) == "[]", f"{module} imports Textual"


def test_the_first_frame_does_not_import_docker_py() -> None:
    assert loaded_after(FIRST_FRAME, ("docker", "requests", "urllib3")) == "[]"


#: Imported when first used, never by the first frame: the checks, deploy records, the
#: operation driver and event types, the dump scanner, notifications, the switch-over, the
#: confirmations' wording, resource use, the lock taker's identity, Textual's footer.
NOT_AT_LAUNCH = [
    "stack_tui.tui.plans",
    "stack_tui.core.stats",
    "stack_tui.core.identity",
    "stack_tui.tui.widgets.keys_footer",
    "stack_tui.ops.events",
    "stack_tui.core.parity",
    "stack_tui.core.records",
    "stack_tui.live.driving",
    "stack_tui.core.dumpscan",
    "stack_tui.ops.alerts",
    "stack_tui.core.notify",
    "stack_tui.core.pg",
    "stack_tui.core.switchover",
]


def test_the_first_frame_imports_nothing_only_operations_and_checks_need() -> None:
    loaded = loaded_after(FIRST_FRAME, ("stack_tui",))
    assert [name for name in NOT_AT_LAUNCH if f"'{name}'" in loaded] == []


def test_the_first_frame_does_not_import_datatable() -> None:
    """The panes' first frame is drawn by PanesSnapshot; DataTable (and our tables built on
    it) are imported right after it, when the real widgets take its place."""
    loaded = loaded_after(FIRST_FRAME, ("textual", "stack_tui"))
    assert "'textual.widgets._data_table'" not in loaded
    assert "'stack_tui.tui.widgets.tables'" not in loaded


def test_the_first_frame_imports_neither_header_nor_footer_nor_strptime() -> None:
    """TitleBar and FooterSnapshot draw those lines; backup names are read without
    strptime, whose module imports calendar and locale data."""
    loaded = loaded_after(FIRST_FRAME, ("textual", "_strptime"))
    assert "'textual.widgets._header'" not in loaded
    assert "'textual.widgets._footer'" not in loaded
    assert "'_strptime'" not in loaded
