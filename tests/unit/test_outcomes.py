"""Typed outcomes: what a Result says survives the event log, maps to one exit code, and
the one driver ends every operation with a Result."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from stack_tui import cli
from stack_tui.core.errors import EngineUnreachable, LockHeld, Refused, StackError
from stack_tui.ops import driver
from stack_tui.ops.events import (
    BackupTaken,
    Cause,
    ConfirmationNeeded,
    Deployed,
    Event,
    Killed,
    Outcome,
    Payload,
    Restored,
    RestoreUndone,
    Result,
    StepStarted,
    from_json,
)
from stack_tui.ops.runner import classify


@pytest.mark.parametrize(
    "payload",
    [
        None,
        BackupTaken("/data/backups/dev_20260223_030000.sql.gz", 6_100_000, 1.25),
        Deployed({"postgres": {"state": "running", "health": "healthy", "image": "postgres:16"}}),
        Restored(
            "/b/dev_x.sql.gz", "agent_db_dev", "agent_db_dev__before_x", 3.5, 1.2, {"load": 2.0}
        ),
        RestoreUndone("agent_db_dev", "agent_db_dev__before_x", "agent_db_dev__before_y", 1.0),
        Killed(4242, 1796140000.0, "up"),
    ],
)
def test_a_result_reads_back_from_the_event_log_with_its_types(payload: Payload | None) -> None:
    result = Result(
        "dev", "backup", Outcome.REFUSED, "dev is busy", ["wait"], cause=Cause.BUSY, payload=payload
    )
    line = result.to_json()
    assert json.loads(line)["ok"] is False  # derived, for readers of the raw log
    again = from_json(line)
    assert isinstance(again, Result)
    assert again.outcome is Outcome.REFUSED and again.cause is Cause.BUSY and not again.ok
    assert again.payload == payload and type(again.payload) is type(payload)


def test_ok_is_derived_from_the_outcome() -> None:
    assert Result("dev", "deploy", Outcome.OK, "done").ok
    for outcome in set(Outcome) - {Outcome.OK}:
        assert not Result("dev", "deploy", outcome, "no").ok


@pytest.mark.parametrize(
    ("error", "outcome", "cause", "code"),
    [
        (LockHeld("busy", ""), Outcome.REFUSED, Cause.BUSY, cli.EXIT_BUSY),
        (EngineUnreachable("gone", ""), Outcome.FAILED, Cause.ENGINE_UNREACHABLE, cli.EXIT_ENGINE),
        (Refused("no", ""), Outcome.REFUSED, None, cli.EXIT_REFUSED),
        (StackError("broke", ""), Outcome.FAILED, None, cli.EXIT_FAILED),
    ],
)
def test_errors_classify_into_an_outcome_a_cause_and_one_exit_code(
    error: StackError, outcome: Outcome, cause: Cause | None, code: int
) -> None:
    assert classify(error) == (outcome, cause)
    assert cli.exit_code(outcome, cause) == code


def test_every_outcome_has_an_exit_code() -> None:
    assert cli.exit_code(Outcome.OK, None) == cli.EXIT_OK
    assert cli.exit_code(Outcome.CANCELLED, None) == cli.EXIT_REFUSED
    assert cli.exit_code(Outcome.INTERRUPTED, None) == cli.EXIT_INTERRUPTED
    assert set(cli.EXIT_FOR_OUTCOME) == set(Outcome)


def test_the_driver_answers_before_the_operation_resumes() -> None:
    seen_by_operation: list[bool | None] = []

    def operation() -> Iterator[Event]:
        question = ConfirmationNeeded("dev", "Go?")
        yield question
        seen_by_operation.append(question.response)
        yield Result("dev", "deploy", Outcome.OK, "done")

    posted: list[Event] = []
    result = driver.drive(operation(), answer=lambda _: True, on_event=posted.append)
    assert seen_by_operation == [True]
    assert result.ok and posted[-1] is result


def test_a_cancelled_drive_closes_the_operation_and_says_interrupted() -> None:
    cleaned: list[str] = []

    def operation() -> Iterator[Event]:
        try:
            yield StepStarted("dev", "backup")
            yield StepStarted("dev", "never reached")
        finally:
            cleaned.append("lock released")

    result = driver.drive(
        operation(), answer=lambda _: False, cancelled=lambda: True, env="dev", operation="backup"
    )
    assert cleaned == ["lock released"]
    assert result.outcome is Outcome.INTERRUPTED and result.env == "dev"


def test_an_operation_without_a_result_fails_and_a_bug_propagates_unless_caught() -> None:
    def silent() -> Iterator[Event]:
        yield StepStarted("dev", "backup")

    assert driver.drive(silent(), answer=lambda _: False).outcome is Outcome.FAILED

    def buggy() -> Iterator[Event]:
        yield StepStarted("dev", "backup")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        driver.drive(buggy(), answer=lambda _: False)
    caught = driver.drive(buggy(), answer=lambda _: False, catch_bugs=True, operation="backup")
    assert caught.outcome is Outcome.FAILED and "unexpected error: boom" in caught.summary


def test_a_result_logged_before_outcomes_were_typed_still_reads() -> None:
    line = (
        '{"kind": "result", "env": "dev", "at": 1.0, "operation": "backup", "ok": false, '
        '"summary": "dev is busy", "details": [], "data": {"error": "LockHeld"}}'
    )
    again = from_json(line)
    assert isinstance(again, Result) and again.outcome is Outcome.FAILED
