"""An environment's lock held on its engine too, when that engine is another host's: operators
on different machines (each with its own data/locks flock) exclude each other there.

The lock is a container named `stack-tui-lock-{project}`: the engine creates a name once,
atomically, so a second creator gets 409 Conflict and reads who holds it from the labels. It
runs `cat` with its stdin attached to the holder and removes itself when `cat` ends: when the
holder lets go, dies (even SIGKILL) or loses its machine, the attach connection closes, `cat`
reads EOF, and the lock is gone with no one to clean up after. A lock container that is not
running (its creator died between create and start) is stale and removed.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict
from typing import Any

from stack_tui.core import endpoints, engine, locks
from stack_tui.core.environments import Environment
from stack_tui.core.errors import LockHeld
from stack_tui.core.prepared import Prepared

log = logging.getLogger(__name__)

LOCK_LABEL = "stack-tui.lock"
HOLDER_LABEL = "stack-tui.holder"
MACHINE_LABEL = "stack-tui.machine"


def container_name(project: str) -> str:
    return f"stack-tui-lock-{project}"


@contextmanager
def hold(prepared: Prepared, project: str, holder: locks.Holder) -> Iterator[None]:
    """Hold `project`'s lock on the env's engine for the block (nothing to do on the local
    engine: the flock is the lock there); LockHeld names the holder and their machine."""
    endpoint = endpoints.resolve(prepared)
    if not endpoint.remote:
        yield
        return
    import docker

    client = engine.client(endpoint=endpoint)
    image = prepared.values.get("POSTGRES_IMAGE", "postgres:16")
    try:
        engine.call(lambda: client.images.get(image))
    except docker.errors.ImageNotFound:
        # A host that never ran the env (its first deploy pulls the image): the local flock
        # alone, as before this lock existed.
        log.warning("no %s on %s: the engine lock is not taken", image, endpoint.describe())
        client.close()
        yield
        return
    name = container_name(project)
    labels = {
        LOCK_LABEL: project,
        HOLDER_LABEL: json.dumps(asdict(holder)),
        MACHINE_LABEL: socket.gethostname(),
    }
    try:
        made = _create(client, name, image, labels, prepared.env)
        attached = engine.call(
            lambda: client.api.attach_socket(made, params={"stdin": 1, "stream": 1})
        )
        engine.call(lambda: client.api.start(made))
        try:
            yield
        finally:
            attached.close()  # `cat` reads EOF and the container removes itself; also:
            with suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_container(made, force=True)
    finally:
        client.close()


def _create(client: Any, name: str, image: str, labels: dict[str, str], env: Environment) -> str:
    """Create the lock container; on a name conflict, remove a stale one once and retry."""
    import docker

    for _ in range(3):
        try:
            made = engine.call(
                lambda: client.api.create_container(
                    image,
                    entrypoint=["cat"],
                    command=[],
                    name=name,
                    labels=labels,
                    stdin_open=True,  # docker-py sets StdinOnce with it
                    network_disabled=True,
                    host_config=client.api.create_host_config(auto_remove=True),
                )
            )
            return str(made["Id"])
        except docker.errors.APIError as err:
            if err.status_code != 409:
                raise
        try:
            found = engine.call(lambda: client.api.inspect_container(name))
        except docker.errors.NotFound:
            continue  # it went away meanwhile: try again
        if not (found.get("State") or {}).get("Running"):
            # Stale (its creator died before starting it), or ending (its holder let go and
            # it is removing itself): remove it if no one is, and wait until it is gone.
            with suppress(docker.errors.APIError):  # NotFound, or "removal in progress"
                client.api.remove_container(name, force=True)
            with suppress(docker.errors.NotFound):
                client.api.wait(name, condition="removed")
            continue
        labels_found = (found.get("Config") or {}).get("Labels") or {}
        raise LockHeld(f"{env.name} is busy on its engine: {_who(labels_found)}.", _HINT)
    raise LockHeld(f"{env.name}'s engine lock could not be taken (contended).", _HINT)


_HINT = (
    "Another operator's machine holds it; wait for that operation to finish, then try again "
    "(a holder that dies releases it by itself)."
)


def _who(labels: Mapping[str, str]) -> str:
    machine = labels.get(MACHINE_LABEL, "?")
    try:
        holder = locks.Holder(**json.loads(labels.get(HOLDER_LABEL, "")))
    except (TypeError, ValueError):
        return f"an operation from {machine}"
    return f"{holder.describe()} on {machine}"
