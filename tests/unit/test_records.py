"""Pure logic of deploy records and failure reasons (the engine tests prove them for real)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from stack_tui.core import records
from stack_tui.core.environments import Platform
from stack_tui.core.errors import Refused
from stack_tui.core.failures import ComposeErrors, explain
from stack_tui.core.records import Record, ServiceChange, ServiceState

PROJECT = "stt-unit-prod"


def state(image: str, container: str = "c1") -> ServiceState:
    return ServiceState(container, f"hash-{image}", f"agent:{image}", f"sha256:{image}")


def record(id_: str, started: float, operation: str = "deploy", **kw: object) -> Record:
    base = Record(
        id=id_,
        env="prod",
        project=PROJECT,
        operation=operation,
        started=started,
        user="op",
        ssh_client="",
        host="h",
        compose_hash="x",
        compose_files={},
        git_commit="",
        result="ok",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_default_target_is_the_newest_deploy_not_undone() -> None:
    first = record("prod_1", 1, services={"agent": ServiceChange(None, state("1"))})
    second = record("prod_2", 2, services={"agent": ServiceChange(state("1"), state("3"))})
    gated = record("prod_3", 3, result="rolled back", rolled_back=True)
    history = [gated, second, first]
    assert records.default_target(history) == second
    undo = record("prod_4", 4, operation="rollback", undoes="prod_2")
    assert records.default_target([undo, *history]) == first
    failed_undo = replace(undo, result="failed")
    assert records.default_target([failed_undo, *history]) == second


def test_change_lines_say_what_moved() -> None:
    done = record(
        "prod_2",
        2,
        services={
            "agent": ServiceChange(state("1"), state("3", "c2"), "healthy (updated)"),
            "postgres": ServiceChange(state("pg"), state("pg"), "unchanged"),
        },
    )
    assert done.change_lines() == [
        "agent: image agent:1 (1) -> agent:3 (3); healthy (updated)",
        "postgres: unchanged",
    ]


def test_load_refuses_bad_names_other_envs_and_damaged_files(tmp_path: Path) -> None:
    platform = Platform(
        root=tmp_path, dev_project="stt-unit-dev", prod_project=PROJECT, data_dir=tmp_path / "data"
    )
    directory = records.deploys_dir(platform)
    directory.mkdir(parents=True)
    (directory / "prod_20260101_000000.json").write_text(json.dumps({"version": 1}))
    (directory / "prod_20260101_000001.json").write_text(
        record("prod_20260101_000001", 1, project="someone-else").to_json()
    )
    for name, message in [
        ("nope", "not a deploy record name"),
        ("dev_20260101_000000", "is a dev record, not prod's"),
        ("prod_20260101_000000", "is damaged"),
        ("prod_20260101_000001", "belongs to project someone-else"),
        ("prod_20990101_000000", "No deploy record"),
    ]:
        with pytest.raises(Refused, match=message):
            records.load(platform, platform.prod, name)


def running(health: dict[str, object] | None = None, status: str = "running") -> dict[str, object]:
    return {"State": {"Status": status, "ExitCode": 0, "Health": health}}


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"State": {"Status": "exited", "ExitCode": 3}}, "exited with code 3"),
        ({"State": {"Status": "restarting", "ExitCode": 1}}, "keeps restarting"),
        (
            {"State": {"Status": "running", "ExitCode": 0}, "RestartCount": 4},
            "keeps restarting (4 restarts",
        ),
        (
            running({"Status": "unhealthy", "Log": [{"ExitCode": 1, "Output": "HTTP 500\n"}]}),
            "healthcheck failing: exit 1, 'HTTP 500'",
        ),
        (
            running({"Status": "starting", "FailingStreak": 0, "Log": []}),
            "timed out after 30 s waiting for it to be healthy",
        ),
        (running({"Status": "healthy"}), ""),
    ],
)
def test_explain_says_why_in_words(container: dict[str, object], expected: str) -> None:
    why = explain("agent", container, ComposeErrors(), PROJECT, "agent:1", False, 30)
    assert why.startswith(expected) if expected else why == ""


def test_compose_errors_are_kept_per_service() -> None:
    errors = ComposeErrors()
    errors.add('{"id":"agent","text":"Error","status":"pull access denied"}', PROJECT)
    errors.add(f'{{"id":"Container {PROJECT}-traefik-1","status":"Error","text":"x"}}', PROJECT)
    errors.add(
        '{"error":true,"message":"Error response from daemon: driver failed programming '
        f"external connectivity on endpoint {PROJECT}-traefik-1: Bind for 0.0.0.0:8080 "
        'failed: port is already allocated"}',
        PROJECT,
    )
    assert errors.by_service == {"agent": "pull access denied", "traefik": "x"}
    assert explain("agent", running(), errors, PROJECT, "agent:9", True, 30) == (
        "image agent:9 is not on this machine and pulling it failed: pull access denied"
    )
    assert explain(
        "traefik", {"State": {"Status": "created"}}, errors, PROJECT, "t", False, 30
    ).startswith("port 8080 is already in use")
