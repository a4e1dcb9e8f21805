"""prod's engine over SSH failing mid-operation, and the operations that reach it through
engine.for_env (drill, logs, rollback) run against it. The network to its host cut (the veth
down: packets dropped, nothing refuses) while a backup streams and while a deploy is in `up`,
its dockerd SIGKILLed while a backup streams: each ends within the configured bound with an
error naming prod and its engine, nothing half-written, the audit saying so, and the next
backup and deploy (or a rollback) work once the engine is back. Real engines, Compose,
OpenSSH, PostgreSQL; the split platform of tests/remote is left as it was found."""

from __future__ import annotations

import contextlib
import io
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from remote.conftest import RemoteEngine, kill_dockerd
from stack_tui import cli
from stack_tui.core import audit, drills, endpoints, engine, records
from stack_tui.core.environments import Platform
from stack_tui.ops import backup as backup_module
from stack_tui.ops.backup import backup
from stack_tui.ops.deploy import deploy
from stack_tui.ops.drill import drill
from stack_tui.ops.events import (
    BackupTaken,
    Cause,
    Event,
    Outcome,
    OutputLine,
    Result,
    ServiceProgress,
    StepStarted,
)
from stack_tui.ops.rollback import rollback
from stack_tui.ops.status import status
from support import TEST_IMAGES, drive, result_of

pytestmark = pytest.mark.engine

#: Seconds a silent engine is given here (30 for operators): the faults end in that time.
DEAD_AFTER = 3
#: The agent image the deploy moves to (made on the remote engine: a label on agent:1).
NEXT_AGENT = "stack-tui-test/agent:rfault"


@pytest.fixture(scope="module")
def short_bounds() -> Iterator[None]:
    """The bound on a silent engine shortened, and the tunnel reopened with it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoints, "DEAD_AFTER", DEAD_AFTER)
        patch.setattr(endpoints, "SSH_CONNECT_TIMEOUT", DEAD_AFTER)
        endpoints.close_tunnels()
        yield
    endpoints.close_tunnels()  # the modules after this one get tunnels of the usual bound


@contextlib.contextmanager
def bulk(remote: RemoteEngine, platform: Platform) -> Iterator[None]:
    """About 10 MB of SQL in prod: more than the way from its engine to this process buffers,
    so a dump cut after its first half megabyte cannot have ended by itself."""
    psql(
        remote,
        platform,
        "CREATE TABLE rfault_bulk AS SELECT g, repeat(md5(g::text), 2) AS t "
        "FROM generate_series(1, 150000) g",
    )
    try:
        yield
    finally:
        psql(remote, platform, "DROP TABLE rfault_bulk")


@pytest.fixture
def small_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_module, "PROGRESS_BYTES", 1 << 19)  # a line per 512 KB


def psql(remote: RemoteEngine, platform: Platform, sql: str) -> str:
    container = engine.service_container(remote.client(), platform.prod_project, "postgres")
    assert container is not None
    argv = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-U", "agent"]
    ran = container.exec_run([*argv, "-d", platform.prod.db_name, "-c", sql])
    assert ran.exit_code == 0, ran.output
    return str(ran.output.decode().strip())


@contextlib.contextmanager
def link_cut_when_called(remote: RemoteEngine) -> Iterator[Callable[[], None]]:
    """A call that takes the network to the engine's host down; it is up again on exit."""

    def cut() -> None:
        subprocess.run(["ip", "link", "set", remote.link, "down"], check=True)

    try:
        yield cut
    finally:
        subprocess.run(["ip", "link", "set", remote.link, "up"], check=True)


def run_until(events: Iterator[Event], moment: Callable[[Event], bool], act: Callable[[], None]):  # type: ignore[no-untyped-def]
    """Drive an operation, doing `act` between two of its events (right after the first one
    `moment` picks); (its events, seconds from `act` to its end)."""
    seen: list[Event] = []
    acted = 0.0
    for event in events:
        seen.append(event)
        if not acted and moment(event):
            act()
            acted = time.monotonic()
    assert acted, f"the moment never came: {[str(e) for e in seen[-5:]]}"
    return seen, time.monotonic() - acted


def dumping(event: Event) -> bool:
    return isinstance(event, OutputLine) and event.line.endswith("of SQL dumped")


def last_audit(platform: Platform, operation: str) -> dict[str, object]:
    return [e for e in audit.read(platform.audit_log) if e["operation"] == operation][-1]


def cut_off(result: Result, url: str, seconds: float) -> None:
    """Said of prod's engine by name, as an unreachable engine, within the bound."""
    assert result.outcome is Outcome.FAILED, (result.summary, result.details)
    assert result.cause is Cause.ENGINE_UNREACHABLE, result.summary
    assert result.summary.startswith(f"prod's engine {url}"), result.summary
    assert seconds < DEAD_AFTER + 15, f"{seconds:.1f} s to say the engine was gone"


def taken(platform: Platform) -> Path:
    done = result_of(drive(backup(platform, platform.prod)))
    assert done.ok, (done.summary, done.details)
    assert isinstance(done.payload, BackupTaken)
    return Path(done.payload.path)


def test_a_drill_of_a_prod_backup_runs_on_prods_engine(
    split: Platform, remote_engine: RemoteEngine
) -> None:
    """The throwaway server on the remote engine (its data on an anonymous volume there: this
    machine's memory says nothing about that host's), the rows checked, and nothing left."""
    psql(
        remote_engine,
        split,
        "CREATE TABLE IF NOT EXISTS rfault_drill(n int); TRUNCATE rfault_drill;"
        "INSERT INTO rfault_drill SELECT generate_series(1, 1234)",
    )
    path = taken(split)
    events = drive(drill(split, split.prod, path))
    done = result_of(events)
    assert done.ok, (done.summary, done.details)
    started = next(e for e in events if isinstance(e, StepStarted) and e.step == "throwaway server")
    assert "data on an anonymous volume" in started.detail, started.detail
    record = drills.read(path)
    assert record is not None and record.ok and not record.mismatches
    assert drills.read_manifest(path)["public.rfault_drill"] == 1234  # type: ignore[index]
    there = remote_engine.client()
    assert not there.containers.list(all=True, filters={"label": "org.stack-tui.drill-of"})
    assert not docker.from_env().containers.list(
        all=True, filters={"label": f"org.stack-tui.drill-of={split.prod_project}"}
    )
    psql(remote_engine, split, "DROP TABLE rfault_drill")


def test_logs_of_a_prod_service_come_from_prods_engine(
    split: Platform, remote_engine: RemoteEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["logs", "postgres", "--grep", "ready to accept"], platform=split)
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK
    lines = out.splitlines()
    assert lines and all("ready to accept connections" in line for line in lines), out
    there = remote_engine.client().containers.get(f"{split.prod_project}-postgres-1")
    assert len(lines) == there.logs().decode().count("ready to accept connections")


@pytest.mark.parametrize("over", ["ssh", "tcp"])
def test_the_link_cut_mid_backup(
    over: str,
    split: Platform,
    remote_engine: RemoteEngine,
    short_bounds: None,
    small_progress: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Packets dropped, nothing refused: over SSH the tunnel's keepalives end the stream, over
    tcp TCP's; the dump's partial file is removed, and the same process backs up again."""
    url = remote_engine.ssh_url
    if over == "tcp":
        url = remote_engine.tcp_url
        monkeypatch.setenv("STACK_PROD_ENGINE", url)
        monkeypatch.setenv("STACK_PROD_ENGINE_CERTS", str(remote_engine.tls_client))
    before = sorted(split.backups_dir.iterdir())
    with bulk(remote_engine, split), link_cut_when_called(remote_engine) as cut:
        events, seconds = run_until(backup(split, split.prod), dumping, cut)
    done = result_of(events)
    cut_off(done, url, seconds)
    assert "stopped answering during the backup: nothing was kept" in done.summary
    assert sorted(split.backups_dir.iterdir()) == before  # not even the .partial
    assert last_audit(split, "backup")["result"] == "failed"

    taken(split)  # the link is back: the same process, a new tunnel, the lock left there


def test_dockerd_killed_mid_backup(
    split: Platform,
    remote_engine: RemoteEngine,
    short_bounds: None,
    small_progress: None,
) -> None:
    """SIGKILL, as a crash would: said at once, naming the engine, nothing kept. Started
    again (same data dir): dockerd 20.10, whose containerd died with it, leaves prod's
    containers exited whatever their restart policy (moby/moby#36496); `status` says so, a
    deploy brings them back, and the next backup works."""
    before = sorted(split.backups_dir.iterdir())
    there = remote_engine.client()
    with bulk(remote_engine, split):
        try:
            events, seconds = run_until(
                backup(split, split.prod), dumping, lambda: kill_dockerd(remote_engine)
            )
        finally:
            if remote_engine.processes[0].poll() is not None:
                remote_engine.start_dockerd()  # answers once its restore (and restarts) ran
            states = {
                c.labels[engine.SERVICE_LABEL]: (c.status, c.attrs["HostConfig"]["RestartPolicy"])
                for c in engine.project_containers(there, split.prod_project)
            }
            print("after the restart:", states)
            if any(state != "running" for state, _ in states.values()):
                shown = status(split, split.prod)
                assert {row.service: row.state for row in shown.services}["postgres"] == "exited"
                repaired = result_of(drive(deploy(split, split.prod)))
                assert repaired.ok, (repaired.summary, repaired.details)
    done = result_of(events)
    cut_off(done, remote_engine.ssh_url, seconds)
    assert sorted(split.backups_dir.iterdir()) == before
    assert last_audit(split, "backup")["result"] == "failed"
    taken(split)


def set_env(platform: Platform, **values: str) -> None:
    lines = platform.dotenv.read_text().splitlines()
    for key, value in values.items():
        lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in lines]
    platform.dotenv.write_text("\n".join(lines) + "\n")


def next_agent_image(there: docker.DockerClient) -> str:
    """agent:1 with a label: another image ID for a deploy to move to, made on that engine."""
    recipe = f"FROM {TEST_IMAGES['AGENT_IMAGE']}\nLABEL org.stack-tui.test=rfault\n".encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(recipe)
        tar.addfile(info, io.BytesIO(recipe))
    context.seek(0)
    image, _ = there.images.build(fileobj=context, custom_context=True, tag=NEXT_AGENT, rm=True)
    return str(image.id)


def agent_in_up(event: Event) -> bool:
    return isinstance(event, ServiceProgress) and event.service == "agent"


def test_the_link_cut_mid_deploy_then_rollback_and_deploy(
    split: Platform, remote_engine: RemoteEngine, short_bounds: None
) -> None:
    """Cut while Compose replaces prod's agent: said naming prod's engine, the deploy record
    and the audit say so; with the link back a rollback (on that engine) puts agent:1 back,
    and the next deploy brings prod to what .env names."""
    there = remote_engine.client()
    first = there.images.get(TEST_IMAGES["AGENT_IMAGE"]).id
    assert next_agent_image(there) != first
    dotenv = split.dotenv.read_text()
    try:
        set_env(split, AGENT_IMAGE=NEXT_AGENT)
        with link_cut_when_called(remote_engine) as cut:
            events, seconds = run_until(deploy(split, split.prod), agent_in_up, cut)
        done = result_of(events)
        cut_off(done, remote_engine.ssh_url, seconds)
        print("deploy cut:", done.summary, *done.details, sep="\n  ")
        assert last_audit(split, "deploy")["result"] == "failed"
        cut_record = records.history(split, "prod")[0]
        assert cut_record.result == "interrupted", cut_record.result
        left = {
            c.name: (c.status, c.image.id == first)
            for c in engine.project_containers(there, split.prod_project)
        }
        print("left on the engine:", left)

        back = result_of(drive(rollback(split, split.prod)))
        assert back.ok, (back.summary, back.details)
        agent = engine.service_container(there, split.prod_project, "agent")
        assert agent is not None and agent.status == "running"
        assert agent.image.id == first
    finally:
        split.dotenv.write_text(dotenv)
    again = result_of(drive(deploy(split, split.prod)))
    assert again.ok, (again.summary, again.details)
    agent = engine.service_container(there, split.prod_project, "agent")
    assert agent is not None and agent.image.id == first
    assert engine.PINNED_FROM_LABEL not in agent.labels  # as .env says again, not pinned
    there.images.remove(NEXT_AGENT)
