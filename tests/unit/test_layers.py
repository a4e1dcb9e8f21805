"""The core and the operations never import Textual; the CLI only when it opens the TUI.

Each module is imported in a fresh interpreter, as harlequin's import-hygiene test does,
so an import pulled in by some other test cannot hide a violation.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import stack_tui.core
import stack_tui.ops

UI_FREE = sorted(
    [f"stack_tui.core.{m.name}" for m in pkgutil.iter_modules(stack_tui.core.__path__)]
    + [f"stack_tui.ops.{m.name}" for m in pkgutil.iter_modules(stack_tui.ops.__path__)]
    + ["stack_tui.cli"]
)


def test_the_list_of_modules_is_not_empty() -> None:
    assert "stack_tui.core.compose" in UI_FREE
    assert "stack_tui.ops.deploy" in UI_FREE


@pytest.mark.parametrize("module", UI_FREE)
def test_module_does_not_import_textual(module: str) -> None:
    probe = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, f"{module} imports Textual: {done.stdout}{done.stderr}"
