"""Prod on another engine (over SSH, and over tcp with TLS), dev on the local one: deploy both,
status, backup and restore across the SSH link, and every bad engine refused naming the
environment and the engine, with nothing changed. Real engines, Compose, OpenSSH, PostgreSQL."""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

import docker
import pytest
from textual.widgets import Static

from remote.conftest import RemoteEngine
from stack_tui.core import endpoints, engine
from stack_tui.core.environments import Platform
from stack_tui.core.errors import EngineUnreachable, Refused
from stack_tui.ops.backup import backup
from stack_tui.ops.deploy import deploy
from stack_tui.ops.events import BackupTaken
from stack_tui.ops.restore import restore
from stack_tui.ops.status import status
from support import drive, psql, result_of, ssh_shim

pytestmark = pytest.mark.engine


def test_each_environment_runs_on_its_own_engine(
    split: Platform, remote_engine: RemoteEngine
) -> None:
    here = docker.from_env()
    there = remote_engine.client()
    label = engine.PROJECT_LABEL
    assert there.containers.list(filters={"label": f"{label}={split.prod_project}"})
    assert not there.containers.list(all=True, filters={"label": f"{label}={split.dev_project}"})
    assert here.containers.list(filters={"label": f"{label}={split.dev_project}"})
    assert not here.containers.list(all=True, filters={"label": f"{label}={split.prod_project}"})
    assert there.volumes.get(split.prod.postgres_volume)

    prod, dev = status(split, split.prod), status(split, split.dev)
    assert not prod.error and not dev.error, (prod.error, dev.error)
    assert {s.service for s in prod.services if s.state == "running"} >= {"postgres", "traefik"}
    assert all(v.present for v in prod.volumes)
    assert endpoints.resolve(split.prod).machine == remote_engine.address


def test_backup_and_restore_across_the_ssh_link(
    split: Platform, remote_engine: RemoteEngine
) -> None:
    on_prod = partial(psql, split, "prod", client=remote_engine.client())
    on_prod(
        "CREATE TABLE IF NOT EXISTS notes(t text); TRUNCATE notes;"
        "INSERT INTO notes SELECT 'row ' || g FROM generate_series(1, 5000) g"
    )
    taken = result_of(drive(backup(split, split.prod)))
    assert taken.ok, (taken.summary, taken.details)
    assert isinstance(taken.payload, BackupTaken)
    path = Path(taken.payload.path)
    assert path.parent == split.backups_dir and oct(path.stat().st_mode & 0o777) == "0o600"

    on_prod("DELETE FROM notes WHERE t > 'row 2'")
    assert on_prod("SELECT count(*) FROM notes") != "5000"
    restored = result_of(drive(restore(split, split.prod, path)))
    assert restored.ok, (restored.summary, restored.details)
    assert on_prod("SELECT count(*) FROM notes") == "5000"


def test_the_same_engine_over_tcp_with_tls(
    split: Platform, remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACK_PROD_ENGINE", remote_engine.tcp_url)
    monkeypatch.setenv("STACK_PROD_ENGINE_CERTS", str(remote_engine.tls_client))
    prod = status(split, split.prod)
    assert not prod.error, (prod.error, prod.hint)
    assert any(s.service == "postgres" and s.state == "running" for s in prod.services)

    wrong_ca = remote_engine.root / "wrong-ca"
    wrong_ca.mkdir()
    for name in ("cert.pem", "key.pem"):
        (wrong_ca / name).write_bytes((remote_engine.tls_client / name).read_bytes())
    (wrong_ca / "ca.pem").write_bytes(
        (remote_engine.root / "tls" / "client" / "cert.pem").read_bytes()  # not the CA
    )
    monkeypatch.setenv("STACK_PROD_ENGINE_CERTS", str(wrong_ca))
    with pytest.raises(EngineUnreachable) as caught:
        engine.for_env(split.prod)
    assert f"prod's engine {remote_engine.tcp_url}" in caught.value.message


def test_an_untrusted_host_key_is_refused_and_nothing_runs(
    split: Platform, remote_engine: RemoteEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same host, presenting a key the known_hosts does not hold: refused, never accepted
    (the known_hosts file is unchanged), no backup written."""
    other_key = tmp_path / "other"
    from remote.conftest import keygen

    key_type, key = keygen(other_key).split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"{remote_engine.address} {key_type} {key}\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        remote_engine.ssh_config.read_text().replace(str(remote_engine.known_hosts), str(known))
    )
    ssh_shim(tmp_path / "bin", config, monkeypatch)
    endpoints.close_tunnels()  # as a new process: no tunnel made with the trusted key
    before = sorted(split.backups_dir.iterdir())
    done = result_of(drive(backup(split, split.prod)))
    assert done.outcome.value == "refused", (done.summary, done.details)
    assert "prod's engine ssh://root@" in done.summary
    assert "host key" in done.summary and "not trusted" in done.summary
    assert known.read_text() == f"{remote_engine.address} {key_type} {key}\n"
    assert sorted(split.backups_dir.iterdir()) == before
    endpoints.close_tunnels()


def test_an_unreachable_engine_is_said_naming_env_and_engine(
    split: Platform, remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = f"ssh://root@{remote_engine.address}:2222"  # no sshd on that port
    monkeypatch.setenv("STACK_PROD_ENGINE", unreachable)
    with pytest.raises(EngineUnreachable) as caught:
        endpoints.resolve(split.prod)
    assert f"prod's engine {unreachable}" in caught.value.message
    assert "Connection refused" in caught.value.message
    snapshot = status(split, split.prod)
    assert snapshot.engine_unreachable or "prod's engine" in snapshot.error
    monkeypatch.setenv("STACK_PROD_ENGINE", "nosuchcontext")
    with pytest.raises(Refused):
        endpoints.resolve(split.prod)


async def test_the_tui_shows_each_engine_and_one_gone_never_stalls_the_other(
    split: Platform, remote_engine: RemoteEngine
) -> None:
    """Both panes live on their own engines: prod's banner names its host and round trip, a
    `docker kill` on each engine is shown in its pane, and with the network to prod's host cut
    (the link down: requests hang, nothing refuses) the dev pane still follows its engine."""
    from stack_tui.live.backend import LiveBackend
    from stack_tui.tui.app import StackApp
    from support import until

    here, there = docker.from_env(), remote_engine.client()
    app = StackApp(LiveBackend(split))
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.main
        await until(pilot, lambda: len(main.session.statuses) == 2, 30, "both panes read")

        def state(env: str, service: str) -> str:
            return str(main.pane(env).services.get_cell(service, "state"))

        def killed(env: str) -> bool:
            return state(env, "agent") != "running"

        def banner(env: str) -> str:
            return str(main.pane(env).part("banner", Static).render())

        await until(pilot, lambda: state("prod", "agent") == "running", 30, "prod agent shown")
        assert f"on {remote_engine.address} (" in banner("prod") and " ms)" in banner("prod")
        assert " on " not in banner("dev")

        shown = {}
        for env, client in (("prod", there), ("dev", here)):
            client.containers.get(f"{split.env(env).project}-agent-1").kill()
            shown[env] = await until(pilot, partial(killed, env), 10, f"{env} kill shown")
        print(f"docker kill shown: remote {shown['prod']:.3f} s, local {shown['dev']:.3f} s")

        subprocess.run(["ip", "link", "set", remote_engine.link, "down"], check=True)
        try:
            here.containers.get(f"{split.dev_project}-agent-1").start()
            await until(
                pilot, lambda: state("dev", "agent") == "running", 10, "dev followed, prod cut off"
            )
        finally:
            subprocess.run(["ip", "link", "set", remote_engine.link, "up"], check=True)
        there.containers.get(f"{split.prod_project}-agent-1").start()
        await until(pilot, lambda: state("prod", "agent") == "running", 60, "prod back")


def test_bind_mount_sources_missing_on_the_engines_host_are_refused(
    split: Platform, remote_engine: RemoteEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compose would have the engine create them empty; the deploy is refused first, with
    nothing changed (no backup, no container touched), and without a data root at all too."""
    there = remote_engine.client()
    before = {c.id: c.status for c in there.containers.list(all=True)}
    backups_before = sorted(split.backups_dir.iterdir())
    partial_root = remote_engine.root / "partial-data"
    (partial_root / "qdrant").mkdir(parents=True)
    monkeypatch.setenv("STACK_PROD_DATA_ROOT", str(partial_root))
    done = result_of(drive(deploy(split, split.prod)))
    assert done.outcome.value == "refused", (done.summary, done.details)
    assert f"missing on {remote_engine.address}" in done.summary
    assert str(partial_root / "letsencrypt") in done.summary
    assert str(partial_root / "openwebui") in done.summary
    assert not (partial_root / "letsencrypt").exists()  # not created by the check either

    monkeypatch.setenv("STACK_PROD_DATA_ROOT", "")
    done = result_of(drive(deploy(split, split.prod)))
    assert done.outcome.value == "refused"
    assert "STACK_PROD_DATA_ROOT is not set" in done.summary
    assert {c.id: c.status for c in there.containers.list(all=True)} == before
    assert sorted(split.backups_dir.iterdir()) == backups_before


HOLD_ON_ANOTHER_MACHINE = """
import sys
from pathlib import Path
from stack_tui.core import engine_lock, locks
from stack_tui.core.environments import Platform
from stack_tui.core.prepared import prepare

root, project, data, env_file = sys.argv[1:5]
platform = Platform(root=Path(root), prod_project=project, data_dir=Path(data),
                    env_file=Path(env_file))
with locks.hold(platform.locks_dir, project, "prod", "deploy") as holder:
    with engine_lock.hold(prepare(platform.prod), project, holder):
        print("held", flush=True)
        sys.stdin.read()
"""


def test_two_operators_with_their_own_data_dirs_exclude_each_other_on_the_engine(
    split: Platform, remote_engine: RemoteEngine, tmp_path: Path
) -> None:
    """Operator A (another process, another data directory: its flock is no obstacle here)
    holds prod's lock; B's backup is refused naming A; A is SIGKILLed and the engine drops
    the lock by itself (no cleanup by anyone); B's backup then runs."""
    import os
    import signal
    import sys
    import time

    from stack_tui.core import engine_lock
    from support import REPO

    there = remote_engine.client()
    other_data = tmp_path / "operator-a-data"
    since = time.time()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_ON_ANOTHER_MACHINE,
            str(REPO),
            split.prod_project,
            str(other_data),
            str(split.dotenv),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = result_of(drive(backup(split, split.prod)))
        assert refused.outcome.value == "refused", (refused.summary, refused.details)
        assert "prod is busy on its engine: held by deploy by" in refused.summary
        assert f"(pid {holder.pid})" in refused.summary
        assert not locks_dir_holder(split)  # B's own flock was free all along

        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        name = engine_lock.container_name(split.prod_project)
        destroyed = there.events(
            decode=True, since=int(since), filters={"container": name, "event": "destroy"}
        )
        next(iter(destroyed))  # the engine removed the lock: the attach ended with its holder
        destroyed.close()
        taken = result_of(drive(backup(split, split.prod)))
        assert taken.ok, (taken.summary, taken.details)
        assert not there.containers.list(all=True, filters={"name": name})
        # A's tunnel directory (A had no chance to clean up) is swept when a tunnel opens:
        home = endpoints._tunnels_home()
        assert all(endpoints._answers(left / "docker.sock") for left in home.iterdir())
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def locks_dir_holder(platform: Platform) -> object:
    from stack_tui.core import locks

    return locks.holder(platform.locks_dir, platform.prod_project)


def test_check_on_two_engines(split: Platform, remote_engine: RemoteEngine) -> None:
    """Each env's rows read from its own engine; the bind mounts judged against prod's data
    root on its host; the Traefik attachment is said to be impossible, not failing."""
    from stack_tui.ops.check import run_checks

    rows = {row.name: row for row in run_checks(split).rows}
    assert rows["Engines"].ok and rows["Engines"].prod == remote_engine.ssh_url
    assert rows["Data (volumes, bind mounts)"].ok, rows["Data (volumes, bind mounts)"].detail
    assert rows["Config"].ok and rows["Config"].prod == "in sync"
    assert rows["Traefik on dev network"].ok
    assert "different engines" in rows["Traefik on dev network"].detail
