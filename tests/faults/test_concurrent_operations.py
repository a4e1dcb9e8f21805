"""Several front ends acting on one environment at once: exactly one operation runs."""

from __future__ import annotations

import json
import re

import pytest

from faults.common import backup_checksums, cli_code, platform_code, spawn
from stack_tui import cli
from stack_tui.core import audit, backups, locks
from stack_tui.core.environments import Platform

pytestmark = pytest.mark.engine

#: What a TUI's worker runs once its backup is confirmed: the operation, to its end.
OPERATION_BACKUP = """
from stack_tui.ops.backup import backup
sys.stdin.readline()  # the starting gun
for event in backup(p, p.dev):
    pass
print(json.dumps({"ok": event.ok, "summary": event.summary, "data": event.data}))
"""


def test_two_operation_processes_and_a_cli_at_once_run_exactly_one_backup(big: Platform) -> None:
    op_code = platform_code(big) + "import json\n" + OPERATION_BACKUP
    cli_run = cli_code(big, ["dev", "backup"], before="sys.stdin.readline()\n")
    procs = {
        "op-1": spawn(op_code, stdin=-1),
        "op-2": spawn(op_code, stdin=-1),
        "cli": spawn(cli_run, stdin=-1),
    }
    for proc in procs.values():  # all three are imported and waiting: start them together
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
    for proc in procs.values():
        assert proc.stdin is not None
        proc.stdin.flush()
    outputs = {name: proc.communicate(timeout=120) for name, proc in procs.items()}

    won: list[str] = []
    holders: dict[str, int] = {}
    for name, (out, err) in outputs.items():
        text = out.decode() + err.decode()
        assert "Traceback" not in text, text
        if name == "cli":
            code = procs[name].returncode
            assert code in (cli.EXIT_OK, cli.EXIT_BUSY), text
            if code == cli.EXIT_OK:
                won.append(name)
                continue
            said = text
        else:
            result = json.loads(out.decode().strip().splitlines()[-1])
            if result["ok"]:
                won.append(name)
                continue
            assert result["data"]["error"] == "LockHeld", result
            said = result["summary"]
        match = re.search(r"dev is busy: backup by \S+ \(pid (\d+)\) since \d\d:\d\d:\d\d", said)
        assert match, said
        holders[name] = int(match.group(1))
    assert len(won) == 1, f"exactly one must run, ran: {won}"
    winner_pid = procs[won[0]].pid
    assert set(holders.values()) == {winner_pid}, "the refused ones are told who holds it"

    assert len(backup_checksums(big.backups_dir)) == 1
    assert all(backups.verify(info.path).ok for info in backups.list_backups(big.backups_dir))
    assert locks.holder(big.locks_dir, big.dev_project) is None
    results = sorted(e["result"] for e in audit.read(big.audit_log) if e["operation"] == "backup")
    assert results == ["ok", "refused", "refused"]
    print(f"\nconcurrent: {won[0]} ran (pid {winner_pid}); refused: {sorted(holders)}")
