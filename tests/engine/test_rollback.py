"""Deploy records, failures in words, rollback and the prod health gate, on the real engine.

The agent stand-in comes in three versions (scripts/build-test-images): 1 and 3
are healthy, 2 never is (nothing answers its healthcheck).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import stat
import threading
import uuid
from pathlib import Path

import docker
import pytest

from faults.common import cli_code, spawn
from stack_tui import cli
from stack_tui.core import audit, engine, locks, records
from stack_tui.core.environments import Platform
from stack_tui.ops.deploy import deploy
from stack_tui.ops.events import (
    Cause,
    ConfirmationNeeded,
    Deployed,
    Event,
    Outcome,
    OutputLine,
    Result,
    RolledBack,
)
from stack_tui.ops.rollback import rollback
from stack_tui.ops.status import status
from support import psql, result_of, wait_for

pytestmark = pytest.mark.engine

V1, V2, V3 = "stack-tui-test/agent:1", "stack-tui-test/agent:2", "stack-tui-test/agent:3"


def set_env(platform: Platform, **values: str) -> None:
    """Change lines of the test .env in place (its ports must stay: Traefik would move)."""
    path = platform.dotenv
    lines = path.read_text().splitlines()
    for key, value in values.items():
        lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")


def run(events: object, answer: bool | None = True) -> list[Event]:
    seen: list[Event] = []
    for event in events:  # type: ignore[attr-defined]
        if isinstance(event, ConfirmationNeeded):
            assert answer is not None, event.question
            event.answer(answer)
        seen.append(event)
    return seen


def deploy_payload(result: Result) -> Deployed:
    assert isinstance(result.payload, Deployed), result
    return result.payload


def rollback_payload(result: Result) -> RolledBack:
    assert isinstance(result.payload, RolledBack), result
    return result.payload


def deployed(
    platform: Platform, env: str, agent: str, timeout: int = 60, roll_back: bool | None = None
) -> Result:
    set_env(platform, AGENT_IMAGE=agent)
    return result_of(
        run(
            deploy(
                platform,
                platform.env(env),
                accept_new_volumes=True,
                wait_timeout=timeout,
                roll_back=roll_back,
            )
        )
    )


def image_id(client: docker.DockerClient, ref: str) -> str:
    return str(client.images.get(ref).id)


def container(
    client: docker.DockerClient, platform: Platform, env: str, service: str
) -> docker.models.containers.Container:
    found = engine.service_container(client, platform.env(env).project, service)
    assert found is not None
    return found


def no_raw_json(events: list[Event]) -> None:
    result = result_of(events)
    for line in [result.summary, *result.details]:
        assert not line.lstrip().startswith("{"), line
    assert not any('{"error"' in e.line for e in events if isinstance(e, OutputLine))


def test_prod_deploy_of_an_unhealthy_image_rolls_back_by_itself(
    platform: Platform, engine_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    first = deployed(platform, "prod", V1)
    assert first.ok, first.details
    postgres_before = container(engine_client, platform, "prod", "postgres").id

    set_env(platform, AGENT_IMAGE=V2)
    failed = run(deploy(platform, platform.prod, wait_timeout=15))
    result = result_of(failed)
    no_raw_json(failed)
    assert not result.ok
    assert result.summary.startswith("prod deploy failed: agent ")
    assert "agent timed out after 15 s waiting for it to be healthy" in result.summary
    assert "Rolled back: agent" in result.summary
    assert deploy_payload(result).rolled_back == ["agent"]
    agent = container(engine_client, platform, "prod", "agent")
    assert agent.attrs["Image"] == image_id(engine_client, V1)
    assert agent.attrs["State"]["Health"]["Status"] == "healthy"
    assert container(engine_client, platform, "prod", "postgres").id == postgres_before
    shown = {row.service: row.image for row in status(platform, platform.prod).services}
    assert shown["agent"] == f"{V1} (pinned)"

    newest, older = records.history(platform, "prod")[:2]
    assert (newest.operation, newest.result, newest.rolled_back) == ("deploy", "rolled back", True)
    assert older.result == "ok" and older.id == deploy_payload(first).record
    change = newest.services["agent"]
    assert change.before is not None and change.before.image_id == image_id(engine_client, V1)
    assert change.after is not None and change.after.image_id == image_id(engine_client, V1)
    assert "failed:" in change.result and "rolled back" in change.result
    assert newest.services["postgres"].result == "unchanged"
    assert newest.backup and (platform.backups_dir / newest.backup).is_file()
    path = records.deploys_dir(platform) / f"{newest.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "pg-secret" not in path.read_text()
    assert older.services["agent"].after.image_ref == V1  # type: ignore[union-attr]

    capsys.readouterr()
    assert cli.main(["deploy", "history"], platform=platform) == cli.EXIT_OK
    listed = " ".join(capsys.readouterr().out.split())
    assert listed.index(newest.id) < listed.index(older.id)  # newest first
    assert f"{newest.id} " in listed and "deploy rolled back by" in listed
    assert f"backup before: {newest.backup}" in listed
    assert "agent: config changed" not in listed  # pinned back on the same image
    assert "failed: " in listed and "rolled back to its previous image" in listed
    assert f"agent: image none -> {V1}" in listed


def test_v1_to_v3_then_rollback_is_back_on_v1_without_touching_the_rest(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    third = deployed(platform, "dev", V3)
    assert third.ok, third.details
    assert container(engine_client, platform, "dev", "agent").attrs["Image"] == image_id(
        engine_client, V3
    )
    untouched = {
        s: container(engine_client, platform, "dev", s).id
        for s in ("postgres", "qdrant", "openwebui")
    }

    events = run(rollback(platform, platform.dev, wait_timeout=60))
    result = result_of(events)
    assert result.ok, (result.summary, result.details)
    confirmation = next(e for e in events if isinstance(e, ConfirmationNeeded))
    assert any(
        line.startswith("agent: stack-tui-test/agent:3") and "-> stack-tui-test/agent:1" in line
        for line in confirmation.details
    ), confirmation.details
    assert container(engine_client, platform, "dev", "agent").attrs["Image"] == image_id(
        engine_client, V1
    )
    assert {s: container(engine_client, platform, "dev", s).id for s in untouched} == untouched
    newest = records.history(platform, "dev")[0]
    assert (newest.operation, newest.result, newest.undoes) == (
        "rollback",
        "ok",
        deploy_payload(third).record,
    )
    override = records.deploys_dir(platform) / f"{newest.id}.compose" / "rollback.override.yml"
    assert f"image: {image_id(engine_client, V1)}" in override.read_text()

    again = result_of(run(rollback(platform, platform.dev)))
    assert not again.ok and again.outcome is Outcome.REFUSED
    assert "first deploy" in again.summary


def test_declining_the_rollback_changes_nothing(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    assert deployed(platform, "dev", V3).ok
    before = container(engine_client, platform, "dev", "agent").id
    count = len(records.history(platform, "dev"))
    result = result_of(run(rollback(platform, platform.dev), answer=False))
    assert not result.ok and "cancelled" in result.summary
    assert container(engine_client, platform, "dev", "agent").id == before
    assert len(records.history(platform, "dev")) == count


def test_rollback_with_data_brings_back_the_rows_of_before_the_deploy(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    psql(platform, "dev", "CREATE TABLE notes (id int); INSERT INTO notes VALUES (1), (2)")
    assert deployed(platform, "dev", V3).ok
    psql(platform, "dev", "INSERT INTO notes VALUES (3); DELETE FROM notes WHERE id = 1")

    result = result_of(run(rollback(platform, platform.dev, with_data=True, wait_timeout=60)))
    assert result.ok, (result.summary, result.details)
    assert psql(platform, "dev", "SELECT id FROM notes ORDER BY id").split() == ["1", "2"]
    assert container(engine_client, platform, "dev", "agent").attrs["Image"] == image_id(
        engine_client, V1
    )
    newest = records.history(platform, "dev")[0]
    assert newest.backup == records.history(platform, "dev")[1].backup


def test_an_image_that_cannot_be_pulled_is_named_and_the_old_container_keeps_running(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    agent_before = container(engine_client, platform, "dev", "agent").id
    set_env(platform, AGENT_IMAGE="stack-tui-test/agent:nope")
    events = run(deploy(platform, platform.dev, wait_timeout=30))
    result = result_of(events)
    no_raw_json(events)
    assert not result.ok
    assert (
        "agent image stack-tui-test/agent:nope is not on this machine and pulling it failed"
    ) in result.summary
    agent_line = next(line for line in result.details if line.startswith("agent:"))
    assert "still runs its previous container" in agent_line
    assert container(engine_client, platform, "dev", "agent").id == agent_before
    assert any("./stack rollback --dev" in line for line in result.details) is False


def test_a_pruned_image_is_refused_naming_the_service_and_check_warns(
    platform: Platform, engine_client: docker.DockerClient, tmp_path: Path
) -> None:
    tag = f"stt-{uuid.uuid4().hex[:8]}/agent:pruned"
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text(f"FROM {V1}\nLABEL stack-tui-test.run={tag}\n")
    built, _ = engine_client.images.build(path=str(tmp_path / "img"), tag=tag, rm=True)
    try:
        assert deployed(platform, "dev", tag).ok
        assert deployed(platform, "dev", V3).ok
        engine_client.images.remove(built.id, force=True)
        agent = container(engine_client, platform, "dev", "agent").id
        count = len(records.history(platform, "dev"))

        result = result_of(run(rollback(platform, platform.dev)))
        assert not result.ok and result.outcome is Outcome.REFUSED
        assert "agent cannot go back: its image" in result.summary
        assert "no longer on this machine" in result.summary
        assert container(engine_client, platform, "dev", "agent").id == agent
        assert len(records.history(platform, "dev")) == count

        from stack_tui.ops.check import run_checks

        report = run_checks(platform)
        row = next(r for r in report.rows if r.name == "Rollback images")
        assert not row.ok and "agent" in row.dev
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine_client.images.remove(tag, force=True)


def test_a_crashing_service_says_its_exit_code(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    override = platform.data / "crash.yml"
    override.write_text(
        'services:\n  agent:\n    entrypoint: ["sh", "-c", '
        '"echo no model configured >&2; exit 3"]\n'
    )
    env = platform.dev
    crashing = dataclasses.replace(env, compose_files=(*env.compose_files, override))
    events = run(deploy(platform, crashing, wait_timeout=30))
    result = result_of(events)
    no_raw_json(events)
    assert "agent exited with code 3" in result.summary
    assert any("no model configured" in line for line in result.details)
    assert any(line.startswith("agent:") and "replaced" in line for line in result.details)
    assert any("./stack rollback --dev" in line for line in result.details)


def test_a_port_in_use_is_named(platform: Platform, engine_client: docker.DockerClient) -> None:
    port = int(re.search(r"TRAEFIK_HTTP_PORT=(\d+)", platform.dotenv.read_text()).group(1))  # type: ignore[union-attr]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", port))  # noqa: S104 - the port Traefik publishes on all addresses
        holder.listen()
        events = run(deploy(platform, platform.prod, accept_new_volumes=True, wait_timeout=30))
    result = result_of(events)
    no_raw_json(events)
    assert f"traefik port {port} is already in use" in result.summary, result.summary


def test_an_unhealthy_service_says_its_check_and_dev_keeps_it(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    result = deployed(platform, "dev", V2, timeout=40)
    assert not result.ok
    assert "agent healthcheck failing: exit 1" in result.summary, result.summary
    assert container(engine_client, platform, "dev", "agent").attrs["Image"] == image_id(
        engine_client, V2
    )
    assert records.history(platform, "dev")[0].result == "failed"


def test_bad_records_are_refused_before_anything_changes(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    assert deployed(platform, "dev", V3).ok
    agent = container(engine_client, platform, "dev", "agent").id
    directory = records.deploys_dir(platform)
    (directory / "dev_20200101_000000.json").write_text("{not json")
    prod_record = records.history(platform, "dev")[0].id.replace("dev_", "prod_")
    cases = {
        "dev_20990101_000000": "No deploy record dev_20990101_000000",
        "dev_20200101_000000": "cannot be read",
        prod_record: "is a prod record, not dev's",
        "../../etc/passwd": "is not a deploy record name",
    }
    for name, message in cases.items():
        result = result_of(run(rollback(platform, platform.dev, to=name), answer=None))
        assert not result.ok and result.outcome is Outcome.REFUSED, name
        assert message in result.summary, (name, result.summary)
    assert container(engine_client, platform, "dev", "agent").id == agent
    assert os.listdir(platform.backups_dir) is not None


def test_a_rollback_while_a_deploy_runs_is_told_who_holds_the_lock(platform: Platform) -> None:
    env = platform.dev
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with locks.hold(platform.locks_dir, env.project, env.name, "deploy"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        result = result_of(run(rollback(platform, env), answer=None))
        assert result.cause is Cause.BUSY
        assert "dev is busy: deploy by" in result.summary
    finally:
        release.set()
        holder.join()


def test_ctrl_c_during_a_rollback_releases_the_lock_records_it_and_a_rerun_finishes(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    third = deployed(platform, "dev", V3)
    assert third.ok
    code = cli_code(platform, ["rollback", "--dev", "--yes"])
    proc = spawn(code, start_new_session=True)  # its own group: Ctrl-C reaches Compose too
    try:
        overrides = records.deploys_dir(platform)
        wait_for(lambda: any(overrides.glob("*.compose/rollback.override.yml")), timeout=60)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == cli.EXIT_INTERRUPTED, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert locks.holder(platform.locks_dir, platform.dev_project) is None
    interrupted = records.history(platform, "dev")[0]
    assert (interrupted.operation, interrupted.result) == ("rollback", "interrupted")
    entry = audit.read(platform.audit_log)[-1]
    assert (entry["operation"], entry["result"]) == ("rollback", "interrupted")

    rerun = result_of(run(rollback(platform, platform.dev, wait_timeout=60)))
    assert rerun.ok, (rerun.summary, rerun.details)
    assert rollback_payload(rerun).undoes == deploy_payload(third).record
    assert container(engine_client, platform, "dev", "agent").attrs["Image"] == image_id(
        engine_client, V1
    )


def test_a_deploy_killed_mid_way_shows_as_killed_and_rollback_undoes_it(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    set_env(platform, AGENT_IMAGE=V3)
    proc = spawn(cli_code(platform, ["dev", "deploy", "--yes"]), start_new_session=True)
    try:
        directory = records.deploys_dir(platform)
        wait_for(lambda: len(list(directory.glob("dev_*.json"))) == 2, timeout=60)
        os.killpg(proc.pid, signal.SIGKILL)  # the process and its Compose, between two steps
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The kernel drops the flock once every process of the killed group is gone.
    wait_for(lambda: locks.holder(platform.locks_dir, platform.dev_project) is None)
    killed = records.history(platform, "dev")[0]
    assert killed.result == "killed" and "killed before it finished" in killed.summary

    result = result_of(run(rollback(platform, platform.dev, wait_timeout=60)))
    assert result.ok, (result.summary, result.details)
    assert rollback_payload(result).undoes == killed.id
    agent = container(engine_client, platform, "dev", "agent")
    assert agent.attrs["Image"] == image_id(engine_client, V1)
    assert agent.attrs["State"]["Health"]["Status"] == "healthy"


def test_declining_the_restore_inside_a_rollback_with_data_changes_nothing(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    assert deployed(platform, "dev", V1).ok
    assert deployed(platform, "dev", V3).ok
    psql(platform, "dev", "CREATE TABLE notes (id int); INSERT INTO notes VALUES (7)")
    agent = container(engine_client, platform, "dev", "agent").id
    questions: list[str] = []
    seen: list[Event] = []
    for event in rollback(platform, platform.dev, with_data=True):
        if isinstance(event, ConfirmationNeeded):
            questions.append(event.question)
            event.answer(len(questions) == 1)  # yes to the rollback, no to the restore
        seen.append(event)
    result = result_of(seen)
    assert len(questions) == 2 and questions[1].startswith("Restore ")
    assert not result.ok and result.summary.startswith("dev rollback stopped: ")
    assert "the services are as they were" in result.summary
    assert container(engine_client, platform, "dev", "agent").id == agent
    assert psql(platform, "dev", "SELECT id FROM notes") == "7"
    assert records.history(platform, "dev")[0].result == "failed"


def test_a_compose_killed_while_replacing_a_container_does_not_block_the_next_deploy(
    platform: Platform, engine_client: docker.DockerClient
) -> None:
    """Compose replaces a container by creating the new one as "{old id[:12]}_{name}" and
    renaming it after removing the old one; killed in between, that interim container stays,
    and the next `up` asks for the same name again. The next deploy removes it first."""
    assert deployed(platform, "dev", V1).ok
    old = container(engine_client, platform, "dev", "agent")
    interim = engine_client.containers.create(
        image_id(engine_client, V3), name=f"{old.id[:12]}_{old.name}", labels=old.labels
    )
    try:
        outcome = deployed(platform, "dev", V3)
        assert outcome.ok, (outcome.summary, outcome.details)
        names = [c.name for c in engine_client.containers.list(all=True)]
        assert interim.name not in names
        assert container(engine_client, platform, "dev", "agent").attrs["Config"]["Image"] == V3
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            interim.remove(force=True)
