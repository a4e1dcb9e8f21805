from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from stack_tui.core.environments import Platform
from support import destroy, engine_or_skip, make_platform

# A shell's background job (`cmd &` in a script, nohup) starts with SIGINT ignored, and every
# process the tests spawn would inherit that: the tests that press Ctrl-C on a spawned CLI
# need it to arrive as at a terminal. Python's own handler here makes children start with
# the default disposition again.
signal.signal(signal.SIGINT, signal.default_int_handler)
# pytest-xdist's workers export COLUMNS=80 and LINES=24, and Textual takes its size from them
# before the terminal's: a TUI the tests start in a 120x40 tmux would draw 80x24 in it.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)


@pytest.fixture
def engine_client():  # type: ignore[no-untyped-def]
    return engine_or_skip()


@pytest.fixture
def platform(tmp_path: Path, engine_client) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    """A fresh, empty test platform on the real engine, destroyed afterwards."""
    made = make_platform(tmp_path)
    try:
        yield made
    finally:
        destroy(made)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep what shares a fixture on one pytest-xdist worker (scripts/test runs
    `--dist loadgroup`): a file's tests (module fixtures are made once) and tests/remote's
    (one remote engine for the package)."""
    tests = Path(__file__).parent
    for item in items:
        where = item.path.relative_to(tests)
        group = where.parts[0] if where.parts[0] == "remote" else str(where)
        item.add_marker(pytest.mark.xdist_group(group))
