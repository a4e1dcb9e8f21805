"""An operation killed with SIGKILL is recorded once as `died`, and shown until the next one."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import GeneratorType

from stack_tui.core import audit
from stack_tui.core.environments import Platform
from stack_tui.core.prepared import Prepared
from stack_tui.ops import died, runner
from stack_tui.ops.events import Event, Killed, Outcome, Result, StepStarted
from stack_tui.ops.status import status

REPO = Path(__file__).resolve().parents[2]

RUN_AND_HANG = """
import sys, time
from pathlib import Path
from stack_tui.core.environments import Platform
from stack_tui.ops import runner
from stack_tui.ops.events import StepStarted
p = Platform(root=Path(sys.argv[1]), data_dir=Path(sys.argv[2]), env_file=Path(sys.argv[3]))

def body(_):
    yield StepStarted("dev", "up", "docker compose up")
    print("in step up", flush=True)
    time.sleep(600)

for event in runner.locked(p, p.dev, "deploy", {"accept_new_volumes": False}, body):
    pass
"""

REAP = """
import sys
from pathlib import Path
from stack_tui.core.environments import Platform
from stack_tui.ops import died
p = Platform(root=Path(sys.argv[1]), data_dir=Path(sys.argv[2]), env_file=Path(sys.argv[3]))
print(died.reap(p, p.dev) is not None)
"""


def make(tmp_path: Path) -> Platform:
    env_file = tmp_path / ".env"
    env_file.write_text("DOMAIN=x\n")
    return Platform(root=REPO, data_dir=tmp_path / "data", env_file=env_file)


def argv(code: str, platform: Platform) -> list[str]:
    return [
        sys.executable,
        "-c",
        textwrap.dedent(code),
        str(platform.root),
        str(platform.data),
        str(platform.dotenv),
    ]


def kill_during_a_step(platform: Platform) -> int:
    proc = subprocess.Popen(argv(RUN_AND_HANG, platform), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "in step up\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.pid


def test_a_killed_operation_is_audited_once_as_died_and_shown_until_the_next(
    tmp_path: Path,
) -> None:
    platform = make(tmp_path)
    pid = kill_during_a_step(platform)
    assert audit.read(platform.audit_log) == []  # SIGKILL: the process wrote nothing more

    # Three processes find it at once; one records it.
    reapers = [subprocess.Popen(argv(REAP, platform), stdout=subprocess.PIPE, text=True)]
    reapers += [subprocess.Popen(argv(REAP, platform), stdout=subprocess.PIPE, text=True)]
    found_here = died.reap(platform, platform.dev)
    assert [r.communicate(timeout=30)[0] for r in reapers] == ["True\n", "True\n"]
    assert found_here is not None
    assert (found_here.operation, found_here.pid, found_here.last_step) == ("deploy", pid, "up")
    entries = audit.read(platform.audit_log)
    assert [(e["operation"], e["env"], e["result"]) for e in entries] == [("deploy", "dev", "died")]
    assert f"pid {pid}" in entries[0]["detail"]

    snapshot = status(platform, platform.dev)
    assert snapshot.died is not None and snapshot.died.pid == pid
    assert "died during 'up'" in snapshot.died.describe()
    assert status(platform, platform.prod).died is None
    assert len(audit.read(platform.audit_log)) == 1  # status looked again: still once

    def quick(_: Prepared) -> Iterator[Event]:
        yield Result("dev", "backup", Outcome.OK, summary="done")

    list(runner.locked(platform, platform.dev, "backup", {}, quick))
    assert status(platform, platform.dev).died is None
    assert [e["result"] for e in audit.read(platform.audit_log)] == ["died", "ok"]


def test_an_interrupted_operation_is_not_taken_for_a_dead_one(tmp_path: Path) -> None:
    platform = make(tmp_path)

    def slow(_: Prepared) -> Iterator[Event]:
        yield StepStarted("dev", "dump")
        yield StepStarted("dev", "never reached")

    events = runner.locked(platform, platform.dev, "backup", {}, slow)
    assert isinstance(events, GeneratorType)
    next(events)
    events.close()  # Ctrl-C in the front end: the runner audits it as interrupted
    assert died.reap(platform, platform.dev) is None
    assert [e["result"] for e in audit.read(platform.audit_log)] == ["interrupted"]


def test_a_status_read_knows_the_killed_payload_by_its_kind() -> None:
    """ops.died reads logs as JSON without importing the event types: same kind string."""
    assert Killed.kind == died.KILLED
