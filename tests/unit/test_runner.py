"""ops.runner: the lock, the event log and the audit line around every operation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from stack_tui.core import audit, locks
from stack_tui.core.environments import Platform
from stack_tui.core.errors import Refused
from stack_tui.ops import runner
from stack_tui.ops.events import Result, StepStarted

REPO = Path(__file__).resolve().parents[2]


def make(tmp_path: Path) -> Platform:
    env_file = tmp_path / ".env"
    env_file.write_text("DOMAIN=x\n")
    return Platform(root=REPO, data_dir=tmp_path / "data", env_file=env_file)


def test_events_are_logged_and_audited_and_the_lock_is_held_meanwhile(tmp_path: Path) -> None:
    platform = make(tmp_path)
    seen_holder: list[locks.Holder | None] = []

    def body():  # type: ignore[no-untyped-def]
        seen_holder.append(locks.holder(platform.locks_dir, platform.dev.project))
        yield StepStarted("dev", "work")
        yield Result("dev", "backup", ok=True, summary="done")

    events = list(runner.locked(platform, platform.dev, "backup", {"keep": 5}, body))
    assert [e.kind for e in events] == ["step_started", "result"]
    holder = seen_holder[0]
    assert holder is not None and holder.operation == "backup" and holder.pid == os.getpid()
    assert locks.holder(platform.locks_dir, platform.dev.project) is None
    (log,) = platform.logs_dir.glob("dev_backup_*.jsonl")
    assert [json.loads(line)["kind"] for line in log.read_text().splitlines()] == [
        "step_started",
        "result",
    ]
    assert holder.log == str(log)
    (entry,) = audit.read(platform.audit_log)
    assert (entry["operation"], entry["result"]) == ("backup", "ok")
    assert entry["arguments"] == {"keep": 5}


def test_a_refusal_inside_the_body_is_audited_as_refused(tmp_path: Path) -> None:
    platform = make(tmp_path)

    def body():  # type: ignore[no-untyped-def]
        raise Refused("bad file", "pick another")
        yield  # pragma: no cover

    (result,) = list(runner.locked(platform, platform.dev, "restore", {}, body))
    assert isinstance(result, Result) and result.data["error"] == "Refused"
    assert audit.read(platform.audit_log)[-1]["result"] == "refused"


def test_an_abandoned_operation_is_audited_as_interrupted_and_unlocked(tmp_path: Path) -> None:
    platform = make(tmp_path)
    cleaned: list[bool] = []

    def body():  # type: ignore[no-untyped-def]
        try:
            yield StepStarted("dev", "long")
            yield StepStarted("dev", "never reached")
        finally:
            cleaned.append(locks.holder(platform.locks_dir, platform.dev.project) is not None)

    events = runner.locked(platform, platform.dev, "backup", {}, body)
    next(events)
    events.close()  # type: ignore[attr-defined]
    assert cleaned == [True], "the body's cleanup must run while the lock is still held"
    assert locks.holder(platform.locks_dir, platform.dev.project) is None
    assert audit.read(platform.audit_log)[-1]["result"] == "interrupted"


def test_old_event_logs_are_pruned_and_other_files_kept(tmp_path: Path) -> None:
    platform = make(tmp_path)
    platform.logs_dir.mkdir(parents=True)
    for number in range(runner.KEEP_LOGS + 5):
        old = platform.logs_dir / f"dev_deploy_20260101_0000{number:03d}_1.jsonl"
        old.write_text("{}\n")
        os.utime(old, (1_000_000 + number, 1_000_000 + number))
    unrelated = platform.logs_dir / "notes.txt"
    unrelated.write_text("keep me")

    def body():  # type: ignore[no-untyped-def]
        yield Result("dev", "backup", ok=True, summary="done")

    list(runner.locked(platform, platform.dev, "backup", {}, body))
    logs = list(platform.logs_dir.glob("*.jsonl"))
    assert len(logs) == runner.KEEP_LOGS + 1  # the kept ones, plus the new operation's
    assert not (platform.logs_dir / "dev_deploy_20260101_0000000_1.jsonl").exists()
    assert unrelated.read_text() == "keep me"
