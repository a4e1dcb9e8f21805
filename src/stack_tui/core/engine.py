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

import contextlib
import json
import os
import re
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

    from stack_tui.core.endpoints import Endpoint
    from stack_tui.core.environments import Environment
    from stack_tui.core.prepared import Prepared

T = TypeVar("T")

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
VOLUME_LABEL = "com.docker.compose.volume"
#: Asked of no engine: a placeholder until the engine's own version is read.
MINIMUM_API_VERSION = "1.24"
#: On the containers of a rollback's pinned override: the image reference the pinned image ID
#: stands for (core.records writes it, ops.status shows it).
PINNED_FROM_LABEL = "org.stack-tui.pinned-from"

UNREACHABLE_HINT = (
    "Start the engine (systemctl start docker, or dockerd &) or point DOCKER_HOST at it; "
    "stack-tui reconnects by itself when it answers."
)


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def unreachable(
    err: BaseException | None = None, endpoint: Endpoint | None = None
) -> EngineUnreachable:
    detail = f" ({type(err).__name__})" if err else ""
    if endpoint is not None and endpoint.configured:
        return EngineUnreachable(
            f"{endpoint.describe()} is unreachable{detail}.",
            f"Check that host and its dockerd (docker -H {endpoint.host} info); "
            "stack-tui reconnects by itself when it answers.",
        )
    return EngineUnreachable(
        f"The Docker engine at {engine_address()} is unreachable{detail}.", UNREACHABLE_HINT
    )


def unreachable_for(env: Environment, err: BaseException | None = None) -> EngineUnreachable:
    """`unreachable` naming the env's own engine as configured (nothing resolved: it may be
    the very thing that fails)."""
    from stack_tui.core import endpoints

    if isinstance(err, EngineUnreachable):
        return err
    wanted = endpoints.setting(env)
    if not wanted:
        return unreachable(err)
    detail = f" ({type(err).__name__})" if err else ""
    return EngineUnreachable(
        f"{env.name}'s engine {wanted} is unreachable{detail}.",
        "Check that host and its dockerd; stack-tui reconnects by itself when it answers.",
    )


@contextmanager
def translated(endpoint: Endpoint | None = None) -> Iterator[None]:
    """Turn the ways docker-py reports a missing daemon into EngineUnreachable."""
    import docker
    import requests

    try:
        yield
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,  # a hung engine: ReadTimeout is no ConnectionError
        ConnectionError,
        TimeoutError,  # a stream's read, given up by TCP keepalive (engine.client)
        FileNotFoundError,
    ) as err:
        raise unreachable(err, endpoint) from None
    except docker.errors.APIError as err:
        if err.is_server_error():  # e.g. "database not open" while dockerd shuts down
            raise unreachable(err, endpoint) from None
        raise
    except docker.errors.DockerException as err:
        if "Connection" in str(err) or "connect" in str(err) or "SSL" in str(err):
            raise unreachable(err, endpoint) from None
        raise


def client(timeout: int = 30, endpoint: Endpoint | None = None) -> docker.DockerClient:
    """A client for `endpoint` (default: the local engine); raises EngineUnreachable if it
    does not answer. ssh:// endpoints arrive as their tunnel's local socket (core.endpoints);
    tcp:// verifies the engine's certificate against the endpoint's CA alone."""
    import docker

    if endpoint is None or not endpoint.configured:
        with translated():
            engine = docker.DockerClient(base_url=engine_address(), timeout=timeout)
            engine.ping()
        return engine
    tls: Any = False
    if endpoint.tls_dir is not None:
        tls = docker.tls.TLSConfig(
            client_cert=(str(endpoint.tls_dir / "cert.pem"), str(endpoint.tls_dir / "key.pem")),
            ca_cert=str(endpoint.tls_dir / "ca.pem"),
            verify=True,
        )
    with translated(endpoint):
        # No request before trust_env is off: requests would let REQUESTS_CA_BUNDLE replace
        # the endpoint's CA (psf/requests#3829); the version is asked for right after.
        engine = docker.DockerClient(
            base_url=endpoint.host, timeout=timeout, tls=tls, version=MINIMUM_API_VERSION
        )
        engine.api.trust_env = False
        if endpoint.tls_dir is not None:
            engine.api.mount("https://", _keepalive_adapter())
        engine.api._version = engine.api._retrieve_server_version()
        engine.ping()
    return engine


def _keepalive_adapter() -> Any:
    """requests' HTTPS adapter with connections that probe a silent engine: docker-py reads
    streams (a dump, logs, events, exec output) with no timeout, so with the network to the
    engine's host gone (packets dropped, nothing refused) such a read would wait forever.
    TCP keepalive and TCP_USER_TIMEOUT end it after endpoints.DEAD_AFTER seconds instead.
    (ssh:// needs none of this: the tunnel's own keepalives end it, core.endpoints.)"""
    import requests
    from urllib3.connection import HTTPConnection

    from stack_tui.core import endpoints

    interval = endpoints.keepalive_interval()
    options = [
        *HTTPConnection.default_socket_options,
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval),
        (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval),
        (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, endpoints.KEEPALIVE_PROBES),
        (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, endpoints.DEAD_AFTER * 1000),
    ]

    class KeepaliveAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, socket_options=options, **kwargs)

    return KeepaliveAdapter()


def for_env(target: Environment | Prepared, timeout: int = 30) -> docker.DockerClient:
    """A client for the engine the environment lives on (core.endpoints: its setting,
    checked; an operation's Prepared: its settings, `.env` not read again)."""
    from stack_tui.core import endpoints

    return client(timeout, endpoints.resolve(target))


def for_envs(*envs: Environment, timeout: int = 30) -> dict[str, docker.DockerClient]:
    """A client per environment, one per engine: envs on the same engine share it."""
    from stack_tui.core import endpoints

    by_engine: dict[tuple[str, str], docker.DockerClient] = {}
    found = {}
    for env in envs:
        endpoint = endpoints.resolve(env)
        key = (endpoint.host, str(endpoint.tls_dir))
        if key not in by_engine:
            by_engine[key] = client(timeout, endpoint)
        found[env.name] = by_engine[key]
    return found


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


#: How Compose names a service's new container while it replaces the old one
#: ("{old id[:12]}_{name}"); it renames it once the old one is removed.
COMPOSE_INTERIM_NAME = re.compile(r"^/?[0-9a-f]{12}_")


def compose_leftovers(engine: docker.DockerClient, project: str) -> list[Any]:
    """Interim containers of a Compose killed mid-replace: never started, and in the way of the
    next `up`, which would give the same interim name to the same old container ("Conflict.
    The container name ... is already in use")."""
    with translated():
        found = engine.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={project}", "status": "created"}
        )
    return [c for c in found if COMPOSE_INTERIM_NAME.match(c.name)]


def exec_succeeds(container: Any, argv: list[str]) -> bool:
    """Whether `argv` runs in the container and exits 0. A missing binary is no error: the
    engine answers with a failed exec (126/127), or refuses to create it."""
    import docker

    with translated():
        try:
            result = container.exec_run(argv)  # attached: returns once it has exited
        except docker.errors.APIError:
            return False
    return bool(result.exit_code == 0)


class StatsStream:
    """The engine's stats stream of one container (one decoded sample a second), closable
    from another thread: `close()` shuts its socket, which ends the iteration at once."""

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        # As docker-py's own events(): the raw response is kept so close() can reach its
        # socket (docker-py's stats() generator hides it).
        from docker.types import CancellableStream

        api = client.api
        with translated():
            response = api._get(
                api._url("/containers/{0}/stats", container_id),
                params={"stream": True},
                stream=True,
                timeout=None,
            )
            api._raise_for_status(response)
        self._stream = CancellableStream(api._stream_helper(response, decode=True), response)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with contextlib.suppress(Exception):  # closed under us, or the engine went away
            yield from self._stream

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()


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


def ping(engine: docker.DockerClient | QuickEngine) -> None:
    """One request that asks nothing of the engine: a round trip to it."""
    if isinstance(engine, QuickEngine):
        engine.ping()
        return
    with translated():
        engine.ping()


def missing_bind_sources(engine: docker.DockerClient, image: str, sources: list[str]) -> list[str]:
    """The bind-mount sources that do not exist on the engine's host. The engine says so when
    a container is created with a `Mounts` bind of a missing path (the short `-v` syntax
    would create it, empty): one created, never started, container per source, removed."""
    import docker

    missing = []
    for source in sources:
        mount = docker.types.Mount(target="/source", source=source, type="bind", read_only=True)
        config = engine.api.create_host_config(mounts=[mount], network_mode="none")
        with translated():
            try:
                made = engine.api.create_container(image, command=["true"], host_config=config)
            except docker.errors.APIError as err:
                if "does not exist" not in str(err):
                    raise
                missing.append(source)
                continue
            engine.api.remove_container(made["Id"], force=True)
    return missing


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
    def for_env(cls, env: Environment) -> QuickEngine | None:
        """For an environment whose engine is behind a Unix socket; None for any other
        (docker-py handles those) and for a bad setting (the full read reports it)."""
        from stack_tui.core import endpoints

        try:
            path = endpoints.resolve(env).socket_path
        except StackError:
            return None
        return None if path is None else cls(path)

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

    def ping(self) -> None:
        self._get("/version")

    def project_containers(self, project: str) -> list[Inspected]:
        filters = quote(json.dumps({"label": [f"{PROJECT_LABEL}={project}"]}))
        listed = self._get(f"/containers/json?all=1&filters={filters}") or []
        found = (self._get(f"/containers/{entry['Id']}/json") for entry in listed)
        return [Inspected(attrs) for attrs in found if attrs is not None]  # gone meanwhile

    def volume_labels(self, name: str) -> dict[str, str] | None:
        volume = self._get(f"/volumes/{quote(name, safe='')}")
        return None if volume is None else dict(volume.get("Labels") or {})
