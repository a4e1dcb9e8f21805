"""Deploy against the real engine: volume check, pre-deploy backup, failures, the lock."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import pytest

from stack_tui import cli
from stack_tui.core import audit, backups, engine, locks
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy, missing_volume_warning
from stack_tui.ops.events import ConfirmationNeeded, Result, ServiceProgress, Warning
from support import REPO, destroy, drive, make_platform, psql, wait_for, write_env_file

pytestmark = pytest.mark.engine


def run_deploy(platform: Platform, name: str, answer: bool | None = None, **kw: object) -> list:  # type: ignore[type-arg]
    """Deploy `name`; a confirmation, unless `answer` is given, fails the test."""
    return drive(deploy(platform, platform.env(name), **kw), answer)  # type: ignore[arg-type]


def test_missing_volume_warns_with_spec_text_and_declining_creates_nothing(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    dev = platform.dev
    events = run_deploy(platform, "dev", answer=False)
    warnings = [e.message for e in events if isinstance(e, Warning)]
    assert (
        f"WARNING: Docker volume '{dev.postgres_volume}' does not exist!\n"
        "A new empty volume will be created. This may cause DATA LOSS."
    ) in warnings
    confirmation = next(e for e in events if isinstance(e, ConfirmationNeeded))
    assert confirmation.require_typing == "dev"
    assert missing_volume_warning(dev.postgres_volume) in confirmation.details
    result = events[-1]
    assert isinstance(result, Result) and not result.ok and "cancelled" in result.summary
    assert not engine.volume_exists(engine_client, dev.postgres_volume)
    assert engine.project_containers(engine_client, dev.project) == []
    entry = audit.read(platform.audit_log)[-1]
    assert (entry["operation"], entry["env"], entry["result"]) == ("deploy", "dev", "refused")


def test_redeploy_takes_a_pre_deploy_backup_with_the_data(platform: Platform) -> None:
    first = run_deploy(platform, "dev", accept_new_volumes=True, wait_timeout=90)
    assert first[-1].ok, first[-1].details
    assert any("nothing to back up" in e.message for e in first if isinstance(e, Warning))
    assert {e.service for e in first if isinstance(e, ServiceProgress)} >= {"postgres", "agent"}
    psql(platform, "dev", "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1), (2)")

    second = run_deploy(platform, "dev", wait_timeout=90)
    assert second[-1].ok, second[-1].details
    (taken,) = backups.list_backups(platform.backups_dir, "dev")
    assert backups.verify(taken.path).ok
    import gzip

    with gzip.open(taken.path, "rt") as dump:
        text = dump.read()
    assert "CREATE TABLE public.notes" in text


def test_failing_service_fails_the_deploy_with_its_logs(
    tmp_path: Path, engine_client: docker.DockerClient
) -> None:
    broken = tmp_path / "compose"
    shutil.copytree(REPO / "compose", broken)
    overlay = broken / "docker-compose.dev.yml"
    overlay.write_text(
        overlay.read_text().replace(
            "  agent:\n",
            '  agent:\n    entrypoint: ["sh", "-c", "echo agent crashed: no model configured >&2; '
            'exit 3"]\n',
            1,
        )
    )
    platform = make_platform(tmp_path, compose_dir=broken)
    try:
        events = run_deploy(platform, "dev", accept_new_volumes=True, wait_timeout=30)
        result = events[-1]
        assert isinstance(result, Result) and not result.ok
        assert "agent" in result.summary
        assert any("agent crashed: no model configured" in line for line in result.details)
        assert engine.project_containers(engine_client, platform.prod.project) == []
    finally:
        destroy(platform)


def test_second_deploy_from_another_process_is_refused_naming_the_holder(
    platform: Platform,
) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from stack_tui.core.environments import Platform
        from stack_tui.ops.deploy import deploy
        p = Platform(root=Path({str(REPO)!r}), dev_project={platform.dev_project!r},
                     prod_project={platform.prod_project!r}, data_dir=Path({str(platform.data)!r}),
                     env_file=Path({str(platform.dotenv)!r}))
        for event in deploy(p, p.dev, accept_new_volumes=True, wait_timeout=90):
            pass
        sys.exit(0 if event.ok else 1)
    """)
    first = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(lambda: locks.holder(platform.locks_dir, platform.dev_project) is not None)
        events = run_deploy(platform, "dev", accept_new_volumes=True)
        result = events[-1]
        assert isinstance(result, Result) and not result.ok
        assert result.data["error"] == "LockHeld"
        assert f"pid {first.pid}" in result.summary and "deploy by" in result.summary
    finally:
        assert first.wait(timeout=120) == 0
    assert locks.holder(platform.locks_dir, platform.dev_project) is None


def _cli_root(tmp_path: Path) -> Path:
    """A checkout copy for CLI runs: its own data/ and .env, shipped project names."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "compose", root / "compose")
    (root / "data").mkdir()
    return root


def test_cli_engine_unreachable_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _cli_root(tmp_path)
    write_env_file(root / ".env")
    monkeypatch.setenv("STACK_ROOT", str(root))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert cli.main(["dev", "deploy", "--yes"]) == cli.EXIT_ENGINE
    output = capsys.readouterr()
    assert "unreachable" in output.out + output.err
    assert "Traceback" not in output.out + output.err


def test_cli_missing_env_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STACK_ROOT", str(_cli_root(tmp_path)))
    assert cli.main(["dev", "deploy", "--yes"]) == cli.EXIT_REFUSED
    output = capsys.readouterr().out
    assert "No .env file" in output and "Copy .env.example to .env" in output


def test_cli_malformed_compose_file_shows_composes_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _cli_root(tmp_path)
    write_env_file(root / ".env")
    (root / "compose" / "docker-compose.dev.yml").write_text("services:\n  agent: [unclosed\n")
    monkeypatch.setenv("STACK_ROOT", str(root))
    assert cli.main(["dev", "deploy", "--yes"]) == cli.EXIT_FAILED
    output = capsys.readouterr().out
    assert "docker compose config failed for dev" in output
    assert "yaml" in output.lower()
    assert "pg-secret" not in output
