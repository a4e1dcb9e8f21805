"""A held lock is no pass for the same thread, unless its holder lends it explicitly."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stack_tui.core import locks
from stack_tui.core.errors import LockHeld


def test_the_holding_thread_is_refused_unless_the_lock_is_lent(tmp_path: Path) -> None:
    with locks.hold(tmp_path, "p", "dev", "rollback") as outer:
        with pytest.raises(LockHeld, match="rollback by"), locks.hold(tmp_path, "p", "dev", "x"):
            pass
        with locks.lend("p"), locks.hold(tmp_path, "p", "dev", "restore") as inner:
            assert inner == outer
        seen: list[BaseException] = []

        def elsewhere() -> None:
            try:
                with locks.hold(tmp_path, "p", "dev", "deploy"):
                    pass
            except LockHeld as err:
                seen.append(err)

        with locks.lend("p"):  # lent to this thread only
            other = threading.Thread(target=elsewhere)
            other.start()
            other.join()
        assert len(seen) == 1
    assert locks.holder(tmp_path, "p") is None
    with pytest.raises(RuntimeError):
        locks.lend("p").__enter__()
