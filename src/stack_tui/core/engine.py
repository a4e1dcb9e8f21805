"""Access to the Docker engine through docker-py, with errors a person can act on.

docker-py raises requests' ConnectionError (not DockerException) when the
daemon is gone, and `from_env()` raises at construction: both become
EngineUnreachable with the fix in the hint.

docker-py and its HTTP stack take longer to import than the TUI's whole first
snapshot takes to read, so they are imported where they are used, and the first
snapshot reads the engine through `QuickEngine` (the standard library's HTTP
client on the engine's Unix socket, for three kinds of GET).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from stack_tui.core.errors import EngineUnreachable, StackError

if TYPE_CHECKING:
    import docker

T = TypeVar("T")

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
VOLUME_LABEL = "com.docker.compose.volume"
#: On the containers of a rollback's pinned override: the image reference the pinned image ID
#: stands for (core.records writes it, ops.status shows it).
PINNED_FROM_LABEL = "org.stack-tui.pinned-from"

UNREACHABLE_HINT = (
    "Start the engine (systemctl start docker, or dockerd &) or point DOCKER_HOST at it; "
    "stack-tui reconnects by itself when it answers."
)


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def unreachable(err: BaseException | None = None) -> EngineUnreachable:
    detail = f" ({type(err).__name__})" if err else ""
    return EngineUnreachable(
        f"The Docker engine at {engine_address()} is unreachable{detail}.", UNREACHABLE_HINT
    )


@contextmanager
def translated() -> Iterator[None]:
    """Turn the ways docker-py reports a missing daemon into EngineUnreachable."""
    import docker
    import requests

    try:
        yield
    except (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError) as err:
        raise unreachable(err) from None
    except docker.errors.APIError as err:
        if err.is_server_error():  # e.g. "database not open" while dockerd shuts down
            raise unreachable(err) from None
        raise
    except docker.errors.DockerException as err:
        if "Connection" in str(err) or "connect" in str(err):
            raise unreachable(err) from None
        raise


def client(timeout: int = 30) -> docker.DockerClient:
    """A client for the local engine; raises EngineUnreachable if it does not answer."""
    import docker

    with translated():
        engine = docker.DockerClient(base_url=engine_address(), timeout=timeout)
        engine.ping()
    return engine


def call(fn: Callable[[], T]) -> T:
    with translated():
        return fn()


def is_engine_error(err: Exception) -> bool:
    """docker-py's own error (the engine answered, with an error); docker-py is not imported
    for the question (an error cannot be docker-py's if docker-py was never imported)."""
    loaded = sys.modules.get("docker.errors")
    return loaded is not None and isinstance(err, loaded.DockerException)


def project_containers(engine: docker.DockerClient | QuickEngine, project: str) -> list[Any]:
    """All containers (running or not) Compose labelled as belonging to `project`."""
    if isinstance(engine, QuickEngine):
        return engine.project_containers(project)
    with translated():
        return list(
            engine.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
        )


def service_container(engine: docker.DockerClient, project: str, service: str) -> Any | None:
    """The (first) container of one service of a project, or None."""
    with translated():
        found = engine.containers.list(
            all=True,
            filters={"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]},
        )
    return found[0] if found else None


def volume_labels(engine: docker.DockerClient | QuickEngine, name: str) -> dict[str, str] | None:
    """A volume's labels, or None when there is no such volume."""
    if isinstance(engine, QuickEngine):
        return engine.volume_labels(name)
    import docker

    with translated():
        try:
            volume = engine.volumes.get(name)
        except docker.errors.NotFound:
            return None
    return dict(volume.attrs.get("Labels") or {})


def volume_exists(engine: docker.DockerClient, name: str) -> bool:
    import docker

    with translated():
        try:
            engine.volumes.get(name)
        except docker.errors.NotFound:
            return False
    return True


@dataclass(frozen=True)
class Inspected:
    """A container as `GET /containers/{id}/json` describes it (docker-py's Container.attrs)."""

    attrs: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})


class QuickEngine:
    """The engine's read-only JSON API on its Unix socket, standard library only: what the
    TUI's first snapshot needs (a project's containers, a volume) without docker-py."""

    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        self._path = socket_path
        self._timeout = timeout

    @classmethod
    def local(cls) -> QuickEngine | None:
        """For a `unix://` engine address; None for any other (docker-py handles those)."""
        address = engine_address()
        return cls(address.removeprefix("unix://")) if address.startswith("unix://") else None

    def _get(self, path: str) -> Any:
        """The decoded JSON answer; None for 404. HTTP/1.0, so the engine answers with a plain
        body and closes (http.client would import the email package: ~20 ms more at launch)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(self._timeout)
                connection.connect(self._path)
                connection.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                answer = b"".join(iter(lambda: connection.recv(65536), b""))
        except OSError as err:
            raise unreachable(err) from None
        head, _, body = answer.partition(b"\r\n\r\n")
        try:
            code = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise unreachable() from None  # not an HTTP answer: not an engine we can talk to
        if code == 404:
            return None
        if code >= 400:
            raise StackError(
                f"The Docker engine answered with an error: {code} "
                f"{body[:200].decode(errors='replace')}",
                "Check 'docker info'; stack-tui refreshes on the next event.",
            )
        return json.loads(body)

    def project_containers(self, project: str) -> list[Inspected]:
        filters = quote(json.dumps({"label": [f"{PROJECT_LABEL}={project}"]}))
        listed = self._get(f"/containers/json?all=1&filters={filters}") or []
        found = (self._get(f"/containers/{entry['Id']}/json") for entry in listed)
        return [Inspected(attrs) for attrs in found if attrs is not None]  # gone meanwhile

    def volume_labels(self, name: str) -> dict[str, str] | None:
        volume = self._get(f"/volumes/{quote(name, safe='')}")
        return None if volume is None else dict(volume.get("Labels") or {})
