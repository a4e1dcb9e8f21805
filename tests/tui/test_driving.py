"""Driving an operation and following another process's log, without a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from stack_tui.ops.events import ConfirmationNeeded, Event, OutputLine, Result, StepStarted
from stack_tui.tui import driving
from stack_tui.tui.runs import Run


def test_a_question_is_answered_before_the_operation_resumes() -> None:
    seen_by_operation: list[bool | None] = []

    def operation() -> Iterator[Event]:
        question = ConfirmationNeeded("dev", "Go?", require_typing="dev")
        yield question
        seen_by_operation.append(question.response)
        yield Result("dev", operation="deploy", ok=True, summary="done")

    posted: list[Event] = []
    driving.drive(
        Run("dev", "deploy"), operation, posted.append, ask=lambda _: True, cancelled=lambda: False
    )
    assert seen_by_operation == [True]
    assert isinstance(posted[-1], Result) and posted[-1].ok


def test_a_bug_in_an_operation_becomes_a_failed_result() -> None:
    def operation() -> Iterator[Event]:
        yield StepStarted("dev", "backup")
        raise RuntimeError("boom")

    posted: list[Event] = []
    driving.drive(
        Run("dev", "backup"), operation, posted.append, ask=lambda _: False, cancelled=lambda: False
    )
    assert isinstance(posted[-1], Result) and not posted[-1].ok
    assert "unexpected error: boom" in posted[-1].summary


def test_quitting_closes_the_operation_so_its_cleanup_runs() -> None:
    cleaned: list[str] = []

    def operation() -> Iterator[Event]:
        try:
            while True:
                yield OutputLine("prod", "working")
        finally:
            cleaned.append("lock released")

    posted: list[Event] = []
    driving.drive(
        Run("prod", "deploy"),
        operation,
        posted.append,
        ask=lambda _: False,
        cancelled=lambda: len(posted) >= 3,
    )
    assert cleaned == ["lock released"]
    assert isinstance(posted[-1], Result) and "interrupted" in posted[-1].summary


def test_following_a_log_reads_until_the_result(tmp_path: Path) -> None:
    log = tmp_path / "prod_deploy.jsonl"
    lines = [
        StepStarted("prod", "up").to_json(),
        "not json",
        OutputLine("prod", "x").to_json(),
        Result("prod", operation="deploy", ok=True, summary="done").to_json(),
    ]
    log.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # a line still being written
    rest = iter(["\n".join([lines[2][10:], lines[3]]) + "\n"])

    def held() -> bool:  # the writer finishes its lines while we wait
        with log.open("a") as out:
            out.write(next(rest, ""))
        return True

    posted: list[Event] = []
    driving.follow(
        Run("prod", "deploy"), log, posted.append, held=held, cancelled=lambda: False, poll=0
    )
    assert [type(e).__name__ for e in posted] == ["StepStarted", "OutputLine", "Result"]


def test_a_followed_process_that_died_without_a_result_is_said_so(tmp_path: Path) -> None:
    log = tmp_path / "dev_backup.jsonl"
    log.write_text(StepStarted("dev", "backup").to_json() + "\n")
    posted: list[Event] = []
    driving.follow(
        Run("dev", "backup"), log, posted.append, held=lambda: False, cancelled=lambda: False
    )
    assert isinstance(posted[-1], Result) and "without a result" in posted[-1].summary
