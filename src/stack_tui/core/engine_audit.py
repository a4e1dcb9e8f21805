"""An environment's audit trail kept on its engine's host as well as in this machine's
data/audit.log, when that engine is another host's: any operator machine reads who did what to
the environment, not only the machine that did it.

This machine reaches that host's disk only through the engine, so the trail is a labelled
volume there, `stack-tui-audit-{project}`, holding one file per audit line,
`trail/{time}_{hash of the line}.json` (0600, in a 0700 directory), put there with the engine's
archive API (`docker cp`) into a container that is never started. One file per line, named by
its content, rather than one file appended to: the archive API writes whole files, so two
machines copying at once never overwrite each other's lines, and a line copied twice is the
same file. On the host, `cat .../_data/trail/*` is the trail in time order.

Which of this machine's lines are on the host is a cursor per environment
(data/audit-copied/{project}: the offset in audit.log up to which they are). A copy that fails
leaves it where it was, and the next copy (the next operation's) sends what is behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stack_tui.core import endpoints, engine, lock_image
from stack_tui.core.errors import StackError
from stack_tui.core.prepared import Prepared

VOLUME_LABEL = "stack-tui.audit"
#: On the never-started containers a copy or a read uses (a killed copy's are removed later).
ACCESS_LABEL = "stack-tui.audit-access"
MOUNT = "/audit"
TRAIL = "trail"
#: A never-started access container older than this was left by a killed process.
LEFT_BEHIND_S = 600


def volume_name(project: str) -> str:
    return f"stack-tui-audit-{project}"


def cursor_path(data_dir: Path, project: str) -> Path:
    return data_dir / "audit-copied" / project


@dataclass(frozen=True)
class Copied:
    """What a copy did: lines sent, and lines still only here with why (else "")."""

    sent: int
    behind: int = 0
    error: str = ""


def copy(prepared: Prepared, audit_log: Path) -> Copied:
    """Send this machine's lines of the environment that its engine's host has not got yet.
    Never raises: a failure is said in the returned Copied, and caught up by the next copy."""
    env = prepared.env
    if not on_another_engine(prepared):
        return Copied(0)
    cursor = cursor_path(audit_log.parent, env.project)
    offset, lines = _pending(audit_log, cursor, env.name)
    if not lines:
        return Copied(0)
    try:
        if not endpoints.resolve(prepared).remote:  # a context naming a local socket
            return Copied(0)
        with _access(prepared) as (client, container):
            # Not engine.call: a refused write (5xx) is the host's disk, not an engine gone.
            client.api.put_archive(container, MOUNT, _archive(lines))
    except Exception as err:  # whatever it was, the operation it records stands
        return Copied(0, len(lines), _said(err))
    _advance(cursor, offset)
    return Copied(len(lines))


def _said(err: Exception) -> str:
    if isinstance(err, StackError):
        return err.message
    explanation = getattr(err, "explanation", None)  # docker-py's APIError: the engine's words
    return f"{explanation or err or type(err).__name__}."


def on_another_engine(prepared: Prepared) -> bool:
    """Whether the env's engine is configured to be another one than the local engine (read
    from the settings alone: it may be the engine that cannot be reached)."""
    wanted = prepared.settings.get(endpoints.setting_name(prepared.env.name), "").strip()
    return bool(wanted) and not wanted.startswith("unix://")


def read(prepared: Prepared) -> dict[str, dict[str, Any]]:
    """The environment's trail on its engine's host: line_name -> entry ({} on the local
    engine, and before the first copy)."""
    import docker

    if not endpoints.resolve(prepared).remote:
        return {}
    with _access(prepared) as (client, container):
        try:
            stream, _ = engine.call(lambda: client.api.get_archive(container, f"{MOUNT}/{TRAIL}"))
        except docker.errors.NotFound:
            return {}
        data = b"".join(stream)
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                entries[Path(member.name).name] = json.loads(extracted.read())
    return entries


@dataclass(frozen=True)
class Trail:
    """An environment's audit trail as this machine sees it: its own lines and the host's."""

    #: (entry, where it is: "here", "host" or "both"), oldest first.
    entries: list[tuple[dict[str, Any], str]]
    #: The engine's host ("" for the local engine: then every line is "here").
    host: str = ""
    #: Why the host's copy could not be read or brought up to date, else "".
    error: str = ""


def trail(prepared: Prepared, audit_log: Path) -> Trail:
    """This machine's lines of the environment merged with its engine host's (which hold
    every operator machine's), after sending the host what it lacks."""
    env = prepared.env
    here: dict[str, dict[str, Any]] = {}
    try:
        raw = audit_log.read_bytes()
    except FileNotFoundError:
        raw = b""
    for line in raw.splitlines(keepends=True):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("env") == env.name:
            here[line_name(line)] = entry
    host, error = "", ""
    there: dict[str, dict[str, Any]] = {}
    if on_another_engine(prepared):
        error = copy(prepared, audit_log).error
        try:
            host = endpoints.resolve(prepared).machine
            if not error:
                there = read(prepared)
        except Exception as err:  # the engine's or the way to it: said, this machine's shown
            error = _said(err)
    merged = [
        (entry, "both" if name in here and name in there else "here" if name in here else "host")
        for name, entry in {**there, **here}.items()
    ]
    merged.sort(key=lambda item: _when(item[0]))
    return Trail(merged, host, error)


def _when(entry: dict[str, Any]) -> float:
    try:
        return datetime.strptime(str(entry.get("time")), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0


def line_name(line: bytes) -> str:
    """`20261201T211533+0000_3f2a9c0d51e7b6a4.json`: sorts by time; the same line, the same
    name (entries hold their pid and start time, so two lines never share one)."""
    stamp = re.sub(r"[^0-9T+-]", "", str(json.loads(line).get("time", "")))
    return f"{stamp}_{hashlib.sha256(line).hexdigest()[:16]}.json"


def _pending(audit_log: Path, cursor: Path, env_name: str) -> tuple[int, list[bytes]]:
    """(the offset after the last whole line, the env's lines from the cursor up to it)."""
    try:
        start = int(cursor.read_text() or 0)
    except (FileNotFoundError, ValueError):
        start = 0
    try:
        with audit_log.open("rb") as log:
            size = log.seek(0, io.SEEK_END)
            if start > size:  # audit.log was replaced: send it all again (same names)
                start = 0
            log.seek(start)
            data = log.read(size - start)
    except FileNotFoundError:
        return 0, []
    whole = data[: data.rfind(b"\n") + 1]
    lines = []
    for line in whole.splitlines():
        try:
            if json.loads(line).get("env") == env_name:
                lines.append(line + b"\n")
        except ValueError:
            continue  # not ours to judge here: audit.read reports it
    return start + len(whole), lines


def _advance(cursor: Path, offset: int) -> None:
    cursor.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = cursor.with_name(f".{cursor.name}.tmp")
    temporary.write_text(str(offset))
    temporary.replace(cursor)


def _archive(lines: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        directory = tarfile.TarInfo(TRAIL)
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o700, now
        archive.addfile(directory)
        for line in lines:
            info = tarfile.TarInfo(f"{TRAIL}/{line_name(line)}")
            info.size, info.mode, info.mtime = len(line), 0o600, now
            archive.addfile(info, io.BytesIO(line))
    return buffer.getvalue()


@contextmanager
def _access(prepared: Prepared) -> Iterator[tuple[Any, str]]:
    """A client and a created, never started container with the trail's volume mounted (the
    archive API reaches a volume only through a container); both gone afterwards."""
    import docker

    project = prepared.env.project
    client = engine.for_env(prepared)
    try:
        image = lock_image.ensure(client, endpoints.resolve(prepared).describe())
        _remove_left_behind(client, project)
        volume = volume_name(project)
        engine.call(lambda: client.volumes.create(volume, labels={VOLUME_LABEL: project}))
        made = engine.call(
            lambda: client.api.create_container(
                image,
                command=[],
                labels={ACCESS_LABEL: project},
                network_disabled=True,
                host_config=client.api.create_host_config(binds={volume: {"bind": MOUNT}}),
            )
        )
        try:
            yield client, made["Id"]
        finally:
            with suppress(docker.errors.NotFound):
                client.api.remove_container(made["Id"], force=True)
    finally:
        client.close()


def _remove_left_behind(client: Any, project: str) -> None:
    """Access containers a killed process left (never started, older than LEFT_BEHIND_S)."""
    import docker

    found = engine.call(
        lambda: client.api.containers(all=True, filters={"label": f"{ACCESS_LABEL}={project}"})
    )
    for container in found:
        if time.time() - float(container.get("Created", 0)) > LEFT_BEHIND_S:
            try:
                client.api.remove_container(container["Id"], force=True)
            except docker.errors.APIError:
                continue  # another machine's cleanup got there first
