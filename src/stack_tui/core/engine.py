"""Access to the Docker engine through docker-py, with errors a person can act on.

docker-py raises requests' ConnectionError (not DockerException) when the
daemon is gone, and `from_env()` raises at construction: both become
EngineUnreachable with the fix in the hint.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import docker
import requests

from stack_tui.core.errors import EngineUnreachable

T = TypeVar("T")

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
VOLUME_LABEL = "com.docker.compose.volume"

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
    with translated():
        engine = docker.DockerClient(base_url=engine_address(), timeout=timeout)
        engine.ping()
    return engine


def call(fn: Callable[[], T]) -> T:
    with translated():
        return fn()


def project_containers(engine: docker.DockerClient, project: str) -> list[Any]:
    """All containers (running or not) Compose labelled as belonging to `project`."""
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


def volume_exists(engine: docker.DockerClient, name: str) -> bool:
    with translated():
        try:
            engine.volumes.get(name)
        except docker.errors.NotFound:
            return False
    return True
