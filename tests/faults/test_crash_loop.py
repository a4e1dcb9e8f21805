"""A service crash-looping during a prod deploy: the deploy fails with its logs; dev untouched."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from faults.common import last_result_in_logs, secret_leaks, written_files
from stack_tui import cli
from stack_tui.core import audit, engine, locks
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from support import REPO, destroy, drive, make_platform, psql, result_of

pytestmark = pytest.mark.engine

#: The stand-in images ignore `command:`; the entrypoint is what crashes. It also prints the
#: container's environment, secrets included: none of them may reach the operator.
CRASHING_AGENT = (
    '  agent:\n    entrypoint: ["sh", "-c", "echo agent crashed: no model at $$OPENAI_API_KEY >&2; '
    'env >&2; exit 3"]\n'
)


@pytest.fixture
def crashing_prod(tmp_path: Path, engine_client: docker.DockerClient) -> Iterator[Platform]:
    compose_dir = tmp_path / "compose"
    shutil.copytree(REPO / "compose", compose_dir)
    overlay = compose_dir / "docker-compose.prod.yml"
    text = overlay.read_text()
    assert "  agent:\n" in text and "restart: unless-stopped" in text
    overlay.write_text(text.replace("  agent:\n", CRASHING_AGENT, 1))
    made = make_platform(tmp_path, compose_dir=compose_dir)
    try:
        yield made
    finally:
        destroy(made)


def container_facts(client: docker.DockerClient, project: str) -> dict[str, tuple[str, ...]]:
    facts = {}
    for container in engine.project_containers(client, project):
        state = container.attrs["State"]
        facts[container.name] = (
            container.id,
            state["StartedAt"],
            str(container.attrs.get("RestartCount")),
            state["Status"],
            (state.get("Health") or {}).get("Status", ""),
        )
    return facts


def test_crash_looping_prod_service_fails_the_deploy_and_leaves_dev_alone(
    crashing_prod: Platform,
    engine_client: docker.DockerClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    platform = crashing_prod
    first = result_of(
        drive(deploy(platform, platform.dev, accept_new_volumes=True, wait_timeout=60))
    )
    assert first.ok, (first.summary, first.details)
    psql(platform, "dev", "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1), (2)")
    dev_before = container_facts(engine_client, platform.dev_project)
    assert len(dev_before) == 4 and all(f[3] == "running" for f in dev_before.values())

    code = cli.main(
        ["deploy", "--yes", "--confirm", "prod", "--accept-new-volumes", "--wait-timeout", "20"],
        platform=platform,
    )
    output = capsys.readouterr()
    assert code == cli.EXIT_FAILED, output.out
    assert "prod deploy failed: agent" in output.out
    assert "agent crashed: no model at ***" in output.out
    assert "Traceback" not in output.out + output.err

    result = last_result_in_logs(platform, "prod", "deploy")
    assert result["ok"] is False and "agent" in str(result["summary"])
    details = "\n".join(map(str, result["details"]))
    assert "--- last log lines of agent ---" in details
    assert "agent crashed: no model at ***" in details
    states = result["data"]["services"]  # type: ignore[index]
    assert states["agent"]["state"] in ("restarting", "exited", "running")  # looping
    assert states["agent"]["health"] != "healthy"

    assert container_facts(engine_client, platform.dev_project) == dev_before
    assert psql(platform, "dev", "SELECT count(*) FROM notes") == "2"
    assert locks.holder(platform.locks_dir, platform.prod_project) is None
    entry = audit.read(platform.audit_log)[-1]
    assert (entry["env"], entry["operation"], entry["result"]) == ("prod", "deploy", "failed")

    leaks = secret_leaks(
        {"stdout": output.out, "stderr": output.err, "result": details, **written_files(platform)}
    )
    assert leaks == []
    print(f"\ncrash loop: {result['summary']} agent {states['agent']}")
