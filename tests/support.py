"""Shared test helpers: an isolated platform on the real engine, and ways to query it.

Every engine test gets its own project names (`stt-<id>-dev/prod`), its own
data directory and `.env`, and removes everything labelled with those names
afterwards, so the suite is safe on a host running the real platform.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import docker
import pytest

from stack_tui.core import compose, engine
from stack_tui.core.environments import DEV_PROJECT_NAME, PROD_PROJECT_NAME, Environment, Platform
from stack_tui.core.errors import StackError
from stack_tui.ops import driver
from stack_tui.ops.events import ConfirmationNeeded, Event, Result

REPO = Path(__file__).resolve().parents[1]

TEST_IMAGES = {
    "POSTGRES_IMAGE": "stack-tui-test/postgres:15",
    "QDRANT_IMAGE": "stack-tui-test/qdrant:1",
    "OPENWEBUI_IMAGE": "stack-tui-test/openwebui:1",
    "AGENT_IMAGE": "stack-tui-test/agent:1",
    "TRAEFIK_IMAGE": "stack-tui-test/traefik:1",
}

TEST_SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret-8c1f2a",
    "QDRANT_API_KEY": "qdrant-secret-77ab",
    "WEBUI_SECRET_KEY": "webui-secret-19e3",
    "OPENAI_API_KEY": "sk-test-secret-5d0c",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_env_file(path: Path, **overrides: str) -> Path:
    values = {
        "DOMAIN": "agent.test.invalid",
        "DOMAIN_DEV": "agent-dev.test.invalid",
        "ACME_EMAIL": "ops@test.invalid",
        "POSTGRES_USER": "agent",
        **TEST_SECRETS,
        **TEST_IMAGES,
        "HEALTHCHECK_INTERVAL": "1s",
        "TRAEFIK_HTTP_PORT": str(free_port()),
        "TRAEFIK_HTTPS_PORT": str(free_port()),
        **overrides,
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def make_platform(base: Path, compose_dir: Path | None = None, **env_overrides: str) -> Platform:
    """A platform with unique project names, rooted in `base` (data/ and .env inside it)."""
    run_id = uuid.uuid4().hex[:8]
    data = base / "data"
    for sub in ("backups", "logs", "locks"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    platform = Platform(
        root=REPO,
        dev_project=f"stt-{run_id}-dev",
        prod_project=f"stt-{run_id}-prod",
        data_dir=data,
        env_file=write_env_file(base / ".env", **env_overrides),
        compose_dir=compose_dir or REPO / "compose",
    )
    assert {platform.dev_project, platform.prod_project}.isdisjoint(
        {DEV_PROJECT_NAME, PROD_PROJECT_NAME}
    )
    return platform


def ssh_shim(directory: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put an `ssh` first on PATH that is the real OpenSSH client reading `config` (-F):
    Compose, the docker CLI and docker-py run `ssh` from PATH, and OpenSSH reads
    ~/.ssh/config from the passwd home (not $HOME), so this is how a test gives them its own
    known_hosts and key without touching the operator's."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "ssh"
    shim.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}:{os.environ['PATH']}")
    return shim


def make_certs(directory: Path, server_ip: str) -> tuple[Path, Path]:
    """A CA, a server certificate for `server_ip` and a client certificate, made with openssl:
    (client dir with ca.pem/cert.pem/key.pem, server dir with ca.pem/server-cert.pem/
    server-key.pem), as dockerd --tlsverify and DOCKER_CERT_PATH expect them."""
    client, server = directory / "client", directory / "server"
    for made in (client, server):
        made.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=stt-test-ca",
    )
    for name, subject, extension in (
        ("server", "/CN=stt-remote", f"subjectAltName=IP:{server_ip}\nextendedKeyUsage=serverAuth"),
        ("client", "/CN=stt-operator", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            f"{name}-cert.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    for target, pairs in (
        (
            client,
            (("ca.pem", "ca.pem"), ("client-cert.pem", "cert.pem"), ("client-key.pem", "key.pem")),
        ),
        (
            server,
            (
                ("ca.pem", "ca.pem"),
                ("server-cert.pem", "server-cert.pem"),
                ("server-key.pem", "server-key.pem"),
            ),
        ),
    ):
        for source, name in pairs:
            (target / name).write_bytes((directory / source).read_bytes())
            (target / name).chmod(0o600)
    return client, server


def skip_or_fail(reason: str) -> None:
    """Outside CI a missing prerequisite skips with how to get it; in CI (CI=true) it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def engine_or_skip() -> docker.DockerClient:
    """The engine; in CI its absence fails the test, elsewhere it skips with the fix."""
    try:
        return engine.client(timeout=60)
    except StackError as err:
        reason = (
            f"needs a Docker engine: {err.message} Run scripts/test, which installs and "
            "starts dockerd, Compose v2 and the test images."
        )
        skip_or_fail(reason)
        raise  # unreachable; for type checkers


def destroy(platform: Platform) -> None:
    """Remove every container, volume and network of the platform's two test projects; one
    that fails (prod's remote engine gone) does not keep the other's from being removed."""
    client = docker.from_env(timeout=120)
    failed: list[Exception] = []
    # prod first: its Traefik may be attached to the dev network, which blocks removing it.
    for env in (platform.prod, platform.dev):
        assert env.project.startswith("stt-"), env.project
        try:
            _remove_project(client, env)
        except Exception as err:  # raised below, once both were tried
            failed.append(err)
    if failed:
        raise failed[0]


def _remove_project(client: docker.DockerClient, env: Environment) -> None:
    subprocess.run(
        compose.command(env, "down", "-v", "--remove-orphans", "-t", "1"),
        env=compose.process_env(env),
        capture_output=True,
        check=False,
        timeout=180,
    )
    label = f"{engine.PROJECT_LABEL}={env.project}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": label}):
        volume.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        client.volumes.get(env.postgres_volume).remove(force=True)
    for network in client.networks.list(filters={"label": label}):
        network.remove()


def postgres_container(
    platform: Platform, env: str = "dev", client: docker.DockerClient | None = None
) -> docker.models.containers.Container:
    """The environment's Postgres container (it must exist), on the local engine unless
    `client` is another one's."""
    project = platform.env(env).project
    container = engine.service_container(client or docker.from_env(), project, "postgres")
    assert container is not None, f"no postgres container in {project}"
    return container


def psql(
    platform: Platform,
    env_name: str,
    sql: str,
    database: str = "",
    client: docker.DockerClient | None = None,
) -> str:
    """Run SQL in the environment's Postgres (as the test user) and return psql's output;
    in its own database unless another one of that cluster is named, on the local engine
    unless `client` is another one's."""
    result = postgres_container(platform, env_name, client).exec_run(
        [
            "psql",
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "agent",
            "-d",
            database or platform.env(env_name).db_name,
            "-c",
            sql,
        ]
    )
    out: str = result.output.decode()
    assert result.exit_code == 0, out
    return out.strip()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    """Poll an external condition we cannot subscribe to (e.g. a database accepting queries)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


def drive(events: Iterable[Event], answer: bool | None = True) -> list[Event]:
    """Run an operation to its end through the front ends' driver, answering every
    confirmation with `answer` (None: a confirmation is not expected, and fails the test)."""
    seen: list[Event] = []

    def reply(question: ConfirmationNeeded) -> bool:
        assert answer is not None, f"unexpected confirmation: {question.question}"
        return answer

    driver.drive(events, answer=reply, on_event=seen.append)
    return seen


def result_of(events: list[Event]) -> Result:
    """The operation's Result: its last event."""
    last = events[-1]
    assert isinstance(last, Result), last
    return last


async def until(
    pilot: Any, condition: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> float:
    """Let a Textual app run (between the pilot's pauses) until `condition()` holds; return
    how long it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.2f} s: {what or condition}")
        await pilot.pause(0.02)
    return time.monotonic() - started


def kill_leftovers(root: Path) -> None:
    """Kill what outlives its dockerd: containerd shims (made to survive a dockerd that was
    SIGKILLed, as fault tests do) and the container processes under them, so that an engine
    the tests made leaves nothing running."""
    parents: dict[int, int] = {}
    ours: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            if str(root).encode() in (entry / "cmdline").read_bytes():
                ours.add(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    doomed = set(ours)
    grew = True
    while grew:  # every descendant: the containers' processes under their shims
        more = {pid for pid, parent in parents.items() if parent in doomed} - doomed
        doomed |= more
        grew = bool(more)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
