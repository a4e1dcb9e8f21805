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
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stack_tui.core import endpoints, engine, locks
from stack_tui.core.environments import Environment
from stack_tui.core.errors import LockHeld
from stack_tui.core.prepared import Prepared

log = logging.getLogger(__name__)

LOCK_LABEL = "stack-tui.lock"
HOLDER_LABEL = "stack-tui.holder"
MACHINE_LABEL = "stack-tui.machine"
#: This boot of the holder's machine: the holder's pid means something only there.
BOOT_LABEL = "stack-tui.boot"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


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
        BOOT_LABEL: _boot_id(),
    }
    try:
        made = _create(client, name, image, labels, prepared.env, holder)
        if made is None:  # already ours: lent to an operation run inside the holder's
            yield
            return
        attached = engine.call(
            lambda: client.api.attach_socket(made, params={"stdin": 1, "stream": 1})
        )
        engine.call(lambda: client.api.start(made))
        try:
            yield
        finally:
            attached.close()  # `cat` reads EOF and the container removes itself; also:
            # (best effort: an engine gone from the network keeps it until it notices the
            # connection is dead; our next operation on it finds it stale, see _stale_here)
            with suppress(docker.errors.DockerException, OSError):
                client.api.remove_container(made, force=True)
    finally:
        client.close()


def _create(
    client: Any,
    name: str,
    image: str,
    labels: dict[str, str],
    env: Environment,
    holder: locks.Holder,
) -> str | None:
    """Create the lock container; on a name conflict, remove a stale one once and retry.
    None: the lock is `holder`'s already (lent, locks.lend)."""
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
        labels_found = (found.get("Config") or {}).get("Labels") or {}
        if labels_found.get(HOLDER_LABEL) == labels[HOLDER_LABEL]:
            return None
        if not (found.get("State") or {}).get("Running") or _stale_here(labels_found):
            # Stale (its creator died before starting it, or an operation of this machine
            # that is over), or ending (its holder let go and it is removing itself):
            # remove it if no one is, and wait until it is gone.
            with suppress(docker.errors.APIError):  # NotFound, or "removal in progress"
                client.api.remove_container(name, force=True)
            with suppress(docker.errors.NotFound):
                client.api.wait(name, condition="removed")
            continue
        raise LockHeld(f"{env.name} is busy on its engine: {_who(labels_found)}.", _HINT)
    raise LockHeld(f"{env.name}'s engine lock could not be taken (contended).", _HINT)


def _stale_here(labels: Mapping[str, str]) -> bool:
    """Taken in this boot of this machine by an operation that is over: by a process that is
    gone, or by this one (which holds the env's flock now, so its operation that took it
    has ended; the engine never saw that operation's connection close: the network to it
    was cut, and its host's sshd or dockerd keeps a dead connection until it probes it)."""
    if not labels.get(BOOT_LABEL) or labels.get(BOOT_LABEL) != _boot_id():
        return False
    try:
        pid = int(json.loads(labels.get(HOLDER_LABEL, ""))["pid"])
    except (TypeError, ValueError, KeyError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


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
