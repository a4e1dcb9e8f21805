"""An environment's lock held on its engine too, when that engine is another host's: operators
on different machines (each with its own data/locks flock) exclude each other there.

The lock is a container named `stack-tui-lock-{project}`: the engine creates a name once,
atomically, so a second creator gets 409 Conflict and reads who holds it from the labels. (A
named volume would not do: creating one that exists succeeds.) It runs core.lock_image's
program, which reads its stdin, attached to the holder, until the end; the container removes
itself then: when the holder lets go, dies (even SIGKILL) or loses its machine, the attach
connection closes and the lock is gone with no one to clean up after. A lock container that
is not running (its creator died between create and start) is stale and removed. The image is
loaded by us on first use, so the lock holds on a host that has no image at all yet.

A waiting taker (a scheduled backup) waits on the engine's own word that the holder's container
is gone (`wait` for removal), bounded, then tries again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from stack_tui.core import endpoints, engine, identity, lock_image, locks
from stack_tui.core.environments import Environment
from stack_tui.core.errors import LockHeld
from stack_tui.core.prepared import Prepared

LOCK_LABEL = "stack-tui.lock"
HOLDER_LABEL = "stack-tui.holder"
MACHINE_LABEL = "stack-tui.machine"
#: This boot of the holder's machine: the holder's pid means something only there.
BOOT_LABEL = "stack-tui.boot"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

#: Lock containers this process holds now (their names): one of ours not in it is over.
_HELD_HERE: set[str] = set()


def container_name(project: str) -> str:
    return f"stack-tui-lock-{project}"


@contextmanager
def hold(
    prepared: Prepared,
    project: str,
    holder: locks.Holder,
    *,
    wait: float = 0.0,
    waiting: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold `project`'s lock on the env's engine for the block (nothing to do on the local
    engine: the flock is the lock there); LockHeld names the holder and their machine.

    With `wait` > 0 a held lock is waited for that many seconds at most; `waiting` is told
    who holds it when the wait starts and whenever the holder changes."""
    endpoint = endpoints.resolve(prepared)
    if not endpoint.remote:
        yield
        return
    import docker

    client = engine.client(endpoint=endpoint)
    try:
        image = lock_image.ensure(client, endpoint.describe())
        labels = {
            LOCK_LABEL: project,
            HOLDER_LABEL: json.dumps(asdict(holder)),
            MACHINE_LABEL: socket.gethostname(),
            BOOT_LABEL: _boot_id(),
        }
        taker = _Taker(client, endpoint, container_name(project), prepared.env, wait, waiting)
        made = taker.take(image, labels)
        if made is None:  # already ours: lent to an operation run inside the holder's
            yield
            return
        attached = engine.call(
            lambda: client.api.attach_socket(made, params={"stdin": 1, "stream": 1})
        )
        engine.call(lambda: client.api.start(made))
        _HELD_HERE.add(container_name(project))
        try:
            yield
        finally:
            _HELD_HERE.discard(container_name(project))
            attached.close()  # the program reads EOF and the container removes itself; also:
            # (best effort: an engine gone from the network keeps it until it notices the
            # connection is dead; our next operation on it finds it stale, see _stale_here)
            with suppress(docker.errors.DockerException, OSError):
                client.api.remove_container(made, force=True)
    finally:
        client.close()


class _Taker:
    """Creating the lock container: on a name conflict, a stale one is removed, a live one's
    holder is named (LockHeld), or waited for until the deadline."""

    def __init__(
        self,
        client: Any,
        endpoint: endpoints.Endpoint,
        name: str,
        env: Environment,
        wait: float,
        waiting: Callable[[str], None] | None,
    ) -> None:
        self.client, self.endpoint, self.name, self.env = client, endpoint, name, env
        self.wait, self.waiting = wait, waiting
        self.deadline = time.monotonic() + wait
        self.seen = ""  # the holder last told to `waiting`

    def take(self, image: str, labels: dict[str, str]) -> str | None:
        """The lock container's ID; None when `labels`' holder holds it already (lent)."""
        import docker

        client = self.client
        stale = 0
        while stale < 3:  # a stale one each time, three in a row: contention
            try:
                made = engine.call(
                    lambda: client.api.create_container(
                        image,
                        command=[],
                        name=self.name,
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
            after = self._after_conflict(labels[HOLDER_LABEL])
            if after == "lent":
                return None
            stale += after == "stale"
        raise LockHeld(f"{self.env.name}'s engine lock could not be taken (contended).", _HINT)

    def _after_conflict(self, holder: str) -> Literal["lent", "stale", "waited"]:
        """After a conflict: "lent" when `holder` holds it already; "stale" when it was stale
        or gone; "waited" when its live holder ended within our wait (or the wait ran out:
        the next try names them); LockHeld when it is held and the wait is over."""
        import docker
        import requests

        client = self.client
        try:
            found = engine.call(lambda: client.api.inspect_container(self.name))
        except docker.errors.NotFound:
            return "stale"  # it went away meanwhile
        labels_found = (found.get("Config") or {}).get("Labels") or {}
        if labels_found.get(HOLDER_LABEL) == holder:
            return "lent"
        if not (found.get("State") or {}).get("Running") or _stale_here(labels_found, self.name):
            # Stale (its creator died before starting it, or an operation of this machine
            # that is over), or ending (its holder let go and it is removing itself):
            # remove it if no one is, and wait until it is gone.
            with suppress(docker.errors.APIError):  # NotFound, or "removal in progress"
                client.api.remove_container(self.name, force=True)
            with suppress(docker.errors.NotFound):
                client.api.wait(self.name, condition="removed")
            return "stale"
        who = _who(labels_found)
        left = self.deadline - time.monotonic()
        if left <= 0:
            if self.wait > 0:
                raise LockHeld(
                    f"{self.env.name} is still busy on its engine after {self.wait:.0f} s: "
                    f"held by {who}.",
                    _HINT,
                )
            raise LockHeld(f"{self.env.name} is busy on its engine: held by {who}.", _HINT)
        if self.waiting is not None and who != self.seen:
            self.waiting(f"{who} (on {self.env.name}'s engine)")
        self.seen = who
        try:  # the engine says when the holder's container is gone: no polling
            client.api.wait(found["Id"], timeout=max(0.1, left), condition="removed")
        except docker.errors.NotFound:
            pass
        except requests.exceptions.ConnectionError:
            # docker-py reports the deadline passing (a read timeout) as a ConnectionError:
            # the engine still answering says it was that; the next try names the holder.
            with engine.translated(self.endpoint):
                client.ping()
        return "waited"


_HINT = (
    "Another operator's machine holds it; wait for that operation to finish, then try again "
    "(a holder that dies releases it by itself)."
)


def _who(labels: Mapping[str, str]) -> str:
    """`deploy by ann from 10.0.0.5 (pid 4242) since 21:07:33 (3 min ago) on host opbox`."""
    machine = labels.get(MACHINE_LABEL, "?")
    try:
        holder = locks.Holder(**json.loads(labels.get(HOLDER_LABEL, "")))
    except (TypeError, ValueError):
        return f"an operation from host {machine}"
    return f"{holder.describe()} on host {machine}"


def _stale_here(labels: Mapping[str, str], name: str) -> bool:
    """Taken in this boot of this machine by an operation that is over: by a process that is
    gone, or by this one when none of its holds has it any more (the engine never saw that
    operation's connection close: the network to it was cut, and its host's sshd or dockerd
    keeps a dead connection until it probes it)."""
    if not labels.get(BOOT_LABEL) or labels.get(BOOT_LABEL) != _boot_id():
        return False
    try:
        pid = int(json.loads(labels.get(HOLDER_LABEL, ""))["pid"])
    except (TypeError, ValueError, KeyError):
        return False
    if pid == os.getpid():
        return name not in _HELD_HERE
    return not identity.running(pid)


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""
