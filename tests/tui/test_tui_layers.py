"""The TUI's own logic modules stay Textual-free, so they are testable and reusable
without a terminal; only app, screens, widgets and messages import Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

UI_FREE = [
    "stack_tui.tui",
    "stack_tui.tui.backend",
    "stack_tui.tui.datawatch",
    "stack_tui.tui.driving",
    "stack_tui.tui.plans",
    "stack_tui.tui.runs",
    "stack_tui.tui.watcher",
]


@pytest.mark.parametrize("module", UI_FREE)
def test_module_does_not_import_textual(module: str) -> None:
    probe = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"{module} imports Textual: {done.stdout}"
