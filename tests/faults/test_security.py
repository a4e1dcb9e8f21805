"""Security: no shell, private files whatever the umask, an audit line for every mutating
operation (refused and interrupted ones too), and no secret from .env anywhere."""

from __future__ import annotations

import ast
import dataclasses
import shutil
import signal
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from faults.common import (
    all_checksums,
    backup_checksums,
    cli_code,
    fake_backup,
    run_cli,
    secret_leaks,
    spawn,
    written_files,
)
from stack_tui import cli
from stack_tui.core import audit, backups, locks
from stack_tui.core.environments import Platform
from support import REPO, wait_for

pytestmark = pytest.mark.engine

SRC = REPO / "src" / "stack_tui"


def test_no_command_is_ever_built_for_a_shell() -> None:
    """Static: no shell=True, os.system, os.popen or getoutput anywhere in the package."""
    offences = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if (
                isinstance(node, ast.keyword)
                and node.arg == "shell"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                offences.append(f"{where} shell=")
            if (
                isinstance(node, ast.Attribute)
                and node.attr
                in (
                    "system",
                    "popen",
                    "getoutput",
                    "getstatusoutput",
                    "spawnl",
                    "spawnlp",
                )
                and isinstance(node.value, ast.Name)
                and node.value.id in ("os", "subprocess")
            ):
                offences.append(f"{where} {node.value.id}.{node.attr}")
    assert offences == []


def test_hostile_file_names_in_the_backups_directory_are_only_names(
    big: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    directory = big.backups_dir
    start = datetime(2024, 1, 1)
    for day in range(6):
        fake_backup(directory, "dev", start + timedelta(days=day))
    hostile = [
        "x; touch pwned-1.sql.gz",
        "dev_$(touch pwned-2).sql.gz",
        "`touch pwned-3`.sql.gz",
        "dev_20240101_000000.sql.gz; touch pwned-4",
        "-rf",
        "--help",
        "dev_20240101_000000.sql.gz ",
        " dev_20240101_000000.sql.gz",
    ]
    for name in hostile:
        (directory / name).write_bytes(b"\x1f\x8b")
    (directory / "x; touch ").mkdir()
    untouched = {k: v for k, v in all_checksums(directory).items() if not backups.parse_name(k)}

    for argv in (["backup", "list", "--verify"], ["status", "--dev"], ["dev", "backup"]):
        proc = run_cli(big, argv, before=f"import os; os.chdir({str(tmp_path)!r})\n")
        assert "Traceback" not in proc.stdout + proc.stderr
        assert proc.returncode in (cli.EXIT_OK, cli.EXIT_FAILED), proc.stdout + proc.stderr
    # The backup pruned the two oldest fakes and nothing else.
    assert len(backups.list_backups(directory, "dev")) == 5
    after = {k: v for k, v in all_checksums(directory).items() if not backups.parse_name(k)}
    assert after == untouched
    for name in hostile:
        proc = run_cli(big, ["dev", "backup", "restore", str(directory / name), "--yes"])
        assert proc.returncode == cli.EXIT_REFUSED, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("pwned*")) and not list(Path("/tmp").glob("pwned*"))
    assert not list(REPO.glob("pwned*"))


def test_backups_are_private_even_with_umask_000(big: Platform) -> None:
    shutil.rmtree(big.backups_dir)
    shutil.rmtree(big.logs_dir)
    permissive = "import os\nos.umask(0)\n"
    proc = run_cli(big, ["dev", "backup"], before=permissive)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(big.backups_dir) == 0o700
    (made,) = backups.list_backups(big.backups_dir)
    assert mode(made.path) == 0o600
    assert mode(big.audit_log) == 0o600
    assert mode(big.logs_dir) == 0o700
    assert {mode(p) for p in big.logs_dir.iterdir()} == {0o600}
    assert mode(big.locks_dir / f"{big.dev_project}.lock") == 0o600

    big.backups_dir.chmod(0o777)  # someone opened it up: the next backup narrows it again
    made.path.chmod(0o644)
    proc = run_cli(big, ["dev", "backup"], before=permissive)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert mode(big.backups_dir) == 0o700
    newest = backups.list_backups(big.backups_dir)[0]
    assert mode(newest.path) == 0o600


def test_every_mutating_operation_is_audited_and_no_secret_shows_anywhere(
    big: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Runs every operation, successful, refused, cancelled, failed and interrupted, then
    checks the audit log line by line and scans every output and file for the secrets."""
    for console in (cli.out, cli.err):
        monkeypatch.setattr(console, "width", 1000)
    outputs: dict[str, str] = {}
    start = datetime(2024, 1, 1)
    for day in range(5):
        fake_backup(big.backups_dir, "dev", start + timedelta(days=day))

    wrong_codes: list[str] = []  # checked last: the audit and the secrets are checked anyway

    def stack(label: str, *argv: str, expect: int) -> None:
        code = cli.main(list(argv), platform=big)
        captured = capsys.readouterr()
        outputs[label] = captured.out + captured.err
        if code != expect:
            wrong_codes.append(f"{label}: exit {code}, documented {expect}")
        assert "Traceback" not in outputs[label]

    stack("status", "status", "--dev", expect=cli.EXIT_FAILED)  # only postgres runs in dev
    stack("list", "backup", "list", "--verify", expect=cli.EXIT_OK)
    stack("backup ok", "dev", "backup", expect=cli.EXIT_OK)  # prunes the oldest fake
    stack("backup keep 0", "dev", "backup", "--keep", "0", expect=cli.EXIT_REFUSED)
    with locks.hold(big.locks_dir, big.dev_project, "dev", "deploy"):
        stack("backup busy", "dev", "backup", expect=cli.EXIT_BUSY)
        stack("deploy busy", "dev", "deploy", "--yes", expect=cli.EXIT_BUSY)
        stack("restore busy", "dev", "backup", "restore", "x", "--yes", expect=cli.EXIT_BUSY)
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "oops")
    stack("deploy guard", "dev", "deploy", "--yes", expect=cli.EXIT_REFUSED)
    stack("backup guard", "dev", "backup", expect=cli.EXIT_REFUSED)
    monkeypatch.delenv("COMPOSE_PROJECT_NAME")
    newest = backups.list_backups(big.backups_dir, "dev")[0].path
    stack(
        "restore refused",
        "dev",
        "backup",
        "restore",
        str(big.data / "nope.sql.gz"),
        "--yes",
        expect=cli.EXIT_REFUSED,
    )
    stack(
        "restore cross-env",
        "backup",
        "restore",
        str(newest),
        "--yes",
        "--confirm",
        "prod",
        expect=cli.EXIT_REFUSED,
    )
    stack(
        "restore not confirmed", "dev", "backup", "restore", str(newest), expect=cli.EXIT_REFUSED
    )  # no terminal to ask on, no --yes: documented as 3
    stack("restore ok", "dev", "backup", "restore", str(newest), "--yes", expect=cli.EXIT_OK)
    stack("prod backup fails", "backup", expect=cli.EXIT_FAILED)  # prod has no Postgres

    interrupted = spawn(cli_code(big, ["dev", "backup"]))
    wait_for(lambda: locks.holder(big.locks_dir, big.dev_project) is not None, interval=0.02)
    interrupted.send_signal(signal.SIGINT)
    out, err = interrupted.communicate(timeout=60)
    outputs["backup interrupted"] = out.decode() + err.decode()

    lines = [(e["env"], e["operation"], e["result"]) for e in audit.read(big.audit_log)]
    refused_in_body = {"refused", "failed"}  # refused by the operation itself: either word
    expected: list[tuple[str, str, str | set[str]]] = [
        ("dev", "prune", "ok"),
        ("dev", "backup", "ok"),  # a prune is audited as it happens
        ("dev", "backup", refused_in_body),  # --keep 0
        ("dev", "backup", "refused"),
        ("dev", "deploy", "refused"),
        ("dev", "restore", "refused"),
        ("dev", "deploy", "refused"),
        ("dev", "backup", "refused"),  # COMPOSE_PROJECT_NAME
        ("dev", "restore", refused_in_body),
        ("prod", "restore", refused_in_body),
        ("dev", "restore", refused_in_body),  # not confirmed
        ("dev", "restore", "ok"),
        ("prod", "backup", "failed"),
        ("dev", "backup", "interrupted" if interrupted.returncode == 130 else "ok"),
    ]
    assert len(lines) == len(expected), lines
    for line, (env, operation, result) in zip(lines, expected, strict=True):
        assert line[:2] == (env, operation), (line, expected)
        assert line[2] in (result if isinstance(result, set) else {result}), (line, result)
    assert all(e["user"] and e["time"] and "duration_s" in e for e in audit.read(big.audit_log))
    leaks = secret_leaks({**outputs, **written_files(big)})
    assert leaks == []
    assert wrong_codes == []


@pytest.mark.parametrize(
    "field",
    [
        'ports: ["${POSTGRES_PASSWORD}:5432"]',  # Compose echoes the whole value
        "shm_size: ${POSTGRES_PASSWORD}",  # Compose echoes all but its last character
        'healthcheck: {interval: "${QDRANT_API_KEY}"}',
    ],
)
def test_compose_errors_that_echo_a_secret_are_redacted(
    big: Platform,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
) -> None:
    compose_dir = tmp_path / "compose"
    shutil.copytree(REPO / "compose", compose_dir)
    overlay = compose_dir / "docker-compose.dev.yml"
    text = overlay.read_text()
    overlay.write_text(text.replace("  postgres:\n", f"  postgres:\n    {field}\n", 1))
    broken = dataclasses.replace(big, compose_dir=compose_dir)
    before = backup_checksums(big.backups_dir)
    outputs = {}
    for argv in (["dev", "deploy", "--yes"], ["status", "--dev"]):
        code = cli.main(argv, platform=broken)
        captured = capsys.readouterr()
        outputs[" ".join(argv)] = captured.out + captured.err
        assert code == cli.EXIT_FAILED, outputs
        assert "docker compose config failed for dev" in outputs[" ".join(argv)] or (
            "compose" in outputs[" ".join(argv)]
        )
    assert backup_checksums(big.backups_dir) == before
    assert secret_leaks({**outputs, **written_files(big)}) == []
