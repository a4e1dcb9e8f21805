"""The CLI in pipes and scripts: a closed stdout never stops an operation; refusals exit 3;
an empty prod volume and prod placeholder secrets need more than a flag."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from faults.common import cli_code
from stack_tui import cli
from stack_tui.core import audit, engine
from stack_tui.core.environments import Platform
from support import write_env_file

pytestmark = pytest.mark.engine


def test_deploy_piped_into_head_runs_to_its_end(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    """`./stack dev deploy --accept-new-volumes | head -3`: the reader goes away after three
    lines; the deploy still finishes, healthy, audited ok, with no traceback."""
    argv = ["dev", "deploy", "--accept-new-volumes", "--wait-timeout", "90"]
    proc = subprocess.Popen(
        [sys.executable, "-c", cli_code(platform, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # what `head -3` does when it has its lines
    stderr = proc.stderr.read().decode(errors="replace")
    assert proc.wait(timeout=300) == cli.EXIT_OK, (head, stderr)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    entry = audit.read(platform.audit_log)[-1]
    assert (entry["operation"], entry["result"]) == ("deploy", "ok"), entry
    running = engine.project_containers(engine_client, platform.dev_project)
    assert {c.labels[engine.SERVICE_LABEL] for c in running} == {
        "postgres",
        "qdrant",
        "openwebui",
        "agent",
    }


def test_accept_new_volumes_alone_does_not_create_an_empty_prod_volume(
    platform: Platform, engine_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["deploy", "--accept-new-volumes", "--yes"], platform=platform)
    text = capsys.readouterr()
    assert code == cli.EXIT_REFUSED, text
    assert "--confirm prod" in text.out + text.err
    assert not engine.volume_exists(engine_client, platform.prod.postgres_volume)
    assert engine.project_containers(engine_client, platform.prod_project) == []


def test_prod_refuses_placeholder_secrets_and_dev_warns(
    platform: Platform,
    engine_client: docker.DockerClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env_file = write_env_file(tmp_path / "placeholder.env", QDRANT_API_KEY="change-me")
    with_placeholder = dataclasses.replace(platform, env_file=env_file)
    argv = ["deploy", "--accept-new-volumes", "--yes", "--confirm", "prod"]
    assert cli.main(argv, platform=with_placeholder) == cli.EXIT_REFUSED
    said = capsys.readouterr()
    assert "QDRANT_API_KEY still hold the .env.example placeholder" in said.err + said.out
    assert "change-me" not in said.err + said.out
    assert not engine.volume_exists(engine_client, platform.prod.postgres_volume)
    assert audit.read(platform.audit_log)[-1]["result"] == "refused"

    # dev goes on with a warning (here up to the missing-volume question, declined)
    assert cli.main(["dev", "deploy"], platform=with_placeholder) == cli.EXIT_REFUSED
    said = capsys.readouterr()
    assert "QDRANT_API_KEY still hold the .env.example placeholder" in said.out
    assert "does not exist" in said.out
