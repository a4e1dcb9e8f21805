"""The environment model, the compose command builder and the project-name guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack_tui.core import compose, guard
from stack_tui.core.environments import DEV_PROJECT_NAME, PROD_PROJECT_NAME, Platform
from stack_tui.core.errors import Refused
from stack_tui.ops import runner
from stack_tui.ops.events import Result

REPO = Path(__file__).resolve().parents[2]


def test_shipped_project_names_are_the_specs() -> None:
    assert DEV_PROJECT_NAME == "ai-agent-platform-dev"
    assert PROD_PROJECT_NAME == "ai-agent-platform-prod"
    platform = Platform(root=REPO)
    assert platform.dev.project == "ai-agent-platform-dev"
    assert platform.prod.project == "ai-agent-platform-prod"
    assert platform.dev.postgres_volume == "ai-agent-platform-dev_postgres_data_dev"
    assert platform.prod.postgres_volume == "ai-agent-platform-prod_postgres_data"
    assert (platform.dev.db_name, platform.prod.db_name) == ("agent_db_dev", "agent_db")
    assert platform.dev.bind_mounts == ("qdrant_dev", "openwebui_dev")
    assert platform.prod.bind_mounts == ("qdrant", "openwebui", "letsencrypt")
    assert (platform.dev.domain_var, platform.prod.domain_var) == ("DOMAIN_DEV", "DOMAIN")


def test_project_names_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "something-else")
    monkeypatch.setenv("STACK_PROJECT_NAME", "something-else")
    assert Platform(root=REPO).prod.project == PROD_PROJECT_NAME


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_command_always_passes_project_and_files(name: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DOMAIN=x\n")
    platform = Platform(root=REPO, env_file=env_file)
    env = platform.env(name)
    line = compose.command(env, "up", "-d")
    assert line[line.index("-p") + 1] == env.project
    files = [line[i + 1] for i, arg in enumerate(line) if arg == "-f"]
    assert files == [
        str(REPO / "compose/docker-compose.yml"),
        str(REPO / f"compose/docker-compose.{name}.yml"),
    ]
    assert line[line.index("--project-directory") + 1] == str(REPO)
    assert line[line.index("--env-file") + 1] == str(env_file)
    assert line[-2:] == ["up", "-d"]
    assert line.index("-p") < line.index("up")


def test_compose_process_env_drops_forbidden_and_adds_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "oops")
    env = Platform(root=REPO, data_dir=tmp_path).dev
    environ = compose.process_env(env)
    assert "COMPOSE_PROJECT_NAME" not in environ
    assert environ["STACK_DATA_DIR"] == str(tmp_path)
    assert environ["STACK_DEV_NETWORK"] == "ai-agent-platform-dev_platform"


def test_unknown_environment_is_a_clear_error() -> None:
    with pytest.raises(Refused, match="Unknown environment 'staging'"):
        Platform(root=REPO).env("staging")


@pytest.mark.parametrize("variable", guard.FORBIDDEN_VARIABLES)
def test_guard_finds_variable_in_dotenv(variable: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DOMAIN=x\n{variable}=foo\n")
    with pytest.raises(Refused) as caught:
        guard.check(env_file, environ={})
    assert f"{variable} is set in {env_file}" in caught.value.message


@pytest.mark.parametrize("variable", guard.FORBIDDEN_VARIABLES)
def test_guard_finds_variable_in_process_environment(variable: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DOMAIN=x\n")
    with pytest.raises(Refused) as caught:
        guard.check(env_file, environ={variable: "foo"})
    assert f"{variable} is set in the process environment" in caught.value.message


def test_guard_passes_clean_configuration(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DOMAIN=x\n# COMPOSE_PROJECT_NAME=commented out is fine\n")
    guard.check(env_file, environ={"PATH": "/bin"})


@pytest.mark.parametrize("variable", guard.FORBIDDEN_VARIABLES)
def test_every_operation_stops_before_its_body_runs(
    variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DOMAIN=x\n")
    monkeypatch.setenv(variable, "oops")
    platform = Platform(root=REPO, data_dir=tmp_path / "data", env_file=env_file)
    ran: list[bool] = []

    def body():  # type: ignore[no-untyped-def]
        ran.append(True)
        yield Result("dev", "deploy", ok=True, summary="should not run")

    events = list(runner.locked(platform, platform.dev, "deploy", {}, body))
    assert ran == []
    assert isinstance(events[-1], Result) and not events[-1].ok
    assert variable in events[-1].summary
    assert events[-1].data["error"] == "Refused"


def test_compose_run_refuses_forbidden_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("COMPOSE_PROJECT_NAME=x\n")
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    with pytest.raises(Refused, match="COMPOSE_PROJECT_NAME"):
        compose.run(Platform(root=REPO, env_file=env_file).dev, "config")
