"""ops.blocking speaks while a read and the question to the database both hang (the network
to a remote engine gone): logic only, with a question that never returns; the real link cut
is tests/remote/test_remote_faults.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from stack_tui.core import endpoints, pg
from stack_tui.ops import blocking
from stack_tui.ops.events import OutputLine, Waiting


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocking, "QUIET", 0.02)
    monkeypatch.setattr(endpoints, "DEAD_AFTER", 0.3)  # said after 0.05 s unanswered


def session() -> pg.Session:
    return pg.Session(
        client=None, container=None, user="agent", operation="backup"
    )  # never reached


def stalled(released: threading.Event) -> Iterator[bytes]:
    yield b"first"
    released.wait(10)  # the dump stops coming, as over a cut link
    yield b"last"


def test_a_read_and_a_question_both_hanging_are_said_once(
    quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    unanswered = threading.Event()
    monkeypatch.setattr(pg, "blockers_of", lambda db, name: unanswered.wait(10) and [])
    released = threading.Event()
    seen: list[Any] = []
    for item in blocking.watched(stalled(released), session(), "prod", "pg_dump"):
        seen.append(item)
        if isinstance(item, OutputLine):
            released.set()  # the dump goes on after the line
    said = [item for item in seen if isinstance(item, OutputLine)]
    assert len(said) == 1, seen
    assert "pg_dump has sent nothing" in said[0].line
    assert "prod's engine may be unreachable" in said[0].line
    bound = endpoints.DEAD_AFTER + endpoints.keepalive_interval()
    assert f"given up about {bound:g} s after its last answer" in said[0].line
    assert seen[0] == b"first" and seen[-1] == b"last"
    unanswered.set()


def test_blockers_that_answer_are_named_and_no_silence_is_said(
    quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = pg.Backend(42, "psql", "10.0.0.5", "idle in transaction", 30, "")
    monkeypatch.setattr(pg, "blockers_of", lambda db, name: [blocker])
    released = threading.Event()
    seen: list[Any] = []
    for item in blocking.watched(stalled(released), session(), "prod", "pg_dump"):
        seen.append(item)
        if isinstance(item, Waiting):
            released.set()
    assert any(isinstance(item, Waiting) for item in seen)
    assert not any(isinstance(item, OutputLine) for item in seen)
