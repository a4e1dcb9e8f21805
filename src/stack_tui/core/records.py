"""Deploy records: what each deploy and rollback changed, so it can be undone.

One JSON file per operation, `data/deploys/{env}_{YYYYMMDD_HHMMSS}.json` (0600,
directory 0700), written when the operation starts (result "running") and
rewritten atomically when it ends, so a killed deploy still leaves a record of
what it was about to change. A record holds, per service, the container state
before and after (config hash, image reference, image ID, repo digest), the
compose files it deployed (their content: a rollback needs them, and they hold
no secrets; those live in `.env`), the pre-deploy backup's name and the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack_tui.core import engine, locks
from stack_tui.core.environments import Environment, Platform
from stack_tui.core.errors import Refused, StackError
from stack_tui.core.identity import current

if TYPE_CHECKING:
    import docker


def errors() -> Any:
    """docker-py's errors, imported when first needed: the TUI's first frame has no docker-py."""
    import docker.errors

    return docker.errors


FORMAT_VERSION = 1
NAME_PATTERN = re.compile(r"(dev|prod)_(\d{8}_\d{6})(?:_(\d+))?\.json")
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
#: Set by a rollback's override on each pinned service: the image reference it stands for
#: (defined with the engine's other labels, which status reads without importing records).
PINNED_FROM_LABEL = engine.PINNED_FROM_LABEL


@dataclass(frozen=True)
class ServiceState:
    """One service's container as the engine has it."""

    container_id: str
    config_hash: str
    image_ref: str
    image_id: str
    repo_digest: str = ""
    #: Runs on an image ID pinned by a rollback; `image_ref` is the reference it came from.
    pinned: bool = False
    running: bool = True

    def short_image(self) -> str:
        short = self.image_id.removeprefix("sha256:")[:12]
        return f"{self.image_ref} ({short}{', pinned' if self.pinned else ''})"


@dataclass(frozen=True)
class ServiceChange:
    before: ServiceState | None
    after: ServiceState | None = None
    #: healthy / unchanged / failed: <why> / rolled back / removed / ... (words, for people)
    result: str = ""

    @property
    def image_changed(self) -> bool:
        return _image(self.before) != _image(self.after)

    @property
    def config_changed(self) -> bool:
        return _config(self.before) != _config(self.after)

    @property
    def replaced(self) -> bool:
        """The container is not the one that ran before (a new one took its place)."""
        return _container(self.before) != _container(self.after)


def _short(state: ServiceState | None) -> str:
    return state.short_image() if state else "none"


def _image(state: ServiceState | None) -> str:
    return state.image_id if state else ""


def _config(state: ServiceState | None) -> str:
    return state.config_hash if state else ""


def _container(state: ServiceState | None) -> str:
    return state.container_id if state else ""


@dataclass(frozen=True)
class Record:
    id: str
    env: str
    project: str
    operation: str  # deploy / rollback
    started: float
    user: str
    ssh_client: str
    host: str
    compose_hash: str
    compose_files: dict[str, str]
    git_commit: str
    services: dict[str, ServiceChange] = field(default_factory=dict)
    backup: str = ""
    #: "running" while the operation runs; then "ok", "failed", "rolled back", "interrupted"
    result: str = "running"
    summary: str = ""
    finished: float | None = None
    #: For a rollback: the record whose "before" state it went back to.
    undoes: str = ""
    #: A deploy's failed services went back by themselves (health gate): the deploy
    #: is undone; the default rollback target skips it.
    rolled_back: bool = False

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))

    def who(self) -> str:
        return f"{self.user} from {self.ssh_client}" if self.ssh_client else self.user

    def changed_services(self) -> list[str]:
        """The services this operation changed, or tried to (a failed one rolled back)."""
        return [
            name
            for name, change in sorted(self.services.items())
            if change.image_changed or change.config_changed or change.result.startswith("failed")
        ]

    def change_lines(self) -> list[str]:
        """Per service, what changed and how it went: for the history in the CLI and TUI."""
        lines = []
        for name, change in sorted(self.services.items()):
            what = []
            if change.image_changed:
                what.append(f"image {_short(change.before)} -> {_short(change.after)}")
            pinned_back = bool(change.after and change.after.pinned)
            if change.config_changed and not change.image_changed and not pinned_back:
                what.append("config changed")
            result = change.result or ("unchanged" if not what else "")
            lines.append(f"{name}: " + "; ".join([*what, result] if result else what))
        return lines

    def to_json(self) -> str:
        return json.dumps({"version": FORMAT_VERSION, **asdict(self)}, indent=1)


def deploys_dir(platform: Platform) -> Path:
    return platform.data / "deploys"


def compose_snapshot(
    env: Environment, files: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """The content hash of the env's compose files (or of `files`, the ones a rollback
    brought back) and their text (name -> content)."""
    if files is None:
        files = {path.name: path.read_text(encoding="utf-8") for path in env.compose_files}
    digest = hashlib.sha256()
    for name, text in files.items():
        digest.update(f"{name}\0{len(text)}\0".encode())
        digest.update(text.encode())
    return digest.hexdigest(), files


def git_commit(root: Path) -> str:
    """The checkout's commit, "" when it is not a git checkout (or git is missing)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def service_states(client: docker.DockerClient, project: str) -> dict[str, ServiceState]:
    """Every service's (first) container in `project`, with its image's identity.

    Two requests whatever the number of services (the container summaries, the image
    list): a rollback reads this twice and must cost little more than Compose's own `up`."""
    label = f"{engine.PROJECT_LABEL}={project}"
    with engine.translated():
        rows = client.api.containers(all=True, filters={"label": label})
        digests = image_digests(client)
    states: dict[str, ServiceState] = {}
    for row in rows:
        labels = row.get("Labels") or {}
        service = labels.get(engine.SERVICE_LABEL, "")
        if not service or service in states:
            continue
        image_id = str(row.get("ImageID", ""))
        pinned_from = labels.get(PINNED_FROM_LABEL, "")
        states[service] = ServiceState(
            container_id=str(row.get("Id", "")),
            config_hash=labels.get(engine.CONFIG_HASH_LABEL, ""),
            image_ref=pinned_from or _image_ref(client, row),
            image_id=image_id,
            repo_digest=digests.get(image_id, ""),
            pinned=bool(pinned_from),
            running=row.get("State") == "running",
        )
    return states


def _image_ref(client: docker.DockerClient, row: dict[str, Any]) -> str:
    """The reference the container was created from. The summary shows the image ID instead
    once that reference points elsewhere (a re-tagged image): then ask the container."""
    shown = str(row.get("Image", ""))
    if not shown.startswith("sha256:"):
        return shown
    try:
        attrs = engine.call(lambda: client.api.inspect_container(row["Id"]))
    except errors().NotFound:
        return shown
    return str(attrs.get("Config", {}).get("Image", shown))


def image_digests(client: docker.DockerClient) -> dict[str, str]:
    """Every image on the host: ID -> its registry digest ("" for a locally built one)."""
    with engine.translated():
        listed = client.api.images()
    return {str(image["Id"]): str((image.get("RepoDigests") or [""])[0]) for image in listed}


def states_or(
    client: docker.DockerClient, project: str, fallback: dict[str, ServiceState]
) -> dict[str, ServiceState]:
    """service_states, or `fallback` when the engine went away (a record must still be
    finished after an interrupted operation)."""
    try:
        return service_states(client, project)
    except (StackError, errors().DockerException):
        return fallback


def image_present(client: docker.DockerClient, image_id: str) -> bool:
    try:
        engine.call(lambda: client.images.get(image_id))
    except errors().ImageNotFound:
        return False
    return True


def start(
    platform: Platform,
    env: Environment,
    operation: str,
    before: dict[str, ServiceState],
    compose_files: dict[str, str] | None = None,
    **extra: Any,
) -> Record:
    """A new record for an operation that is about to change `env` (with the env's compose
    files, or `compose_files` when it deploys others); written at once."""
    compose_hash, files = compose_snapshot(env, compose_files)
    actor = current()
    stamp = time.strftime(TIMESTAMP_FORMAT)
    record = Record(
        id="",
        env=env.name,
        project=env.project,
        operation=operation,
        started=time.time(),
        user=actor.user,
        ssh_client=actor.ssh_client,
        host=os.uname().nodename,
        compose_hash=compose_hash,
        compose_files=files,
        git_commit=git_commit(platform.root),
        services={name: ServiceChange(before=state) for name, state in before.items()},
        **extra,
    )
    directory = deploys_dir(platform)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for attempt in range(1, 1000):
        name = f"{env.name}_{stamp}" + (f"_{attempt}" if attempt > 1 else "")
        try:  # O_EXCL: two operations in one second never share a record
            fd = os.open(directory / f"{name}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        record = replace(record, id=name)
        save(platform, record)
        return record
    raise AssertionError("no free record name")  # pragma: no cover: 999 in one second


def save(platform: Platform, record: Record) -> None:
    """Replace the record's file atomically (a reader never sees half a record)."""
    path = deploys_dir(platform) / f"{record.id}.json"
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as sink:
        sink.write(record.to_json())
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(partial, path)


def finish(
    platform: Platform,
    record: Record,
    after: dict[str, ServiceState],
    results: dict[str, str],
    result: str,
    summary: str,
    **extra: Any,
) -> Record:
    """Fill in the state after, the result per service and overall, and save."""
    names = set(record.services) | set(after) | set(results)
    services = {
        name: ServiceChange(
            before=record.services[name].before if name in record.services else None,
            after=after.get(name),
            result=results.get(name, ""),
        )
        for name in sorted(names)
    }
    done = replace(
        record, services=services, result=result, summary=summary, finished=time.time(), **extra
    )
    save(platform, done)
    return done


def finish_interrupted(
    platform: Platform,
    record: Record,
    client: docker.DockerClient,
    fallback: dict[str, ServiceState],
) -> None:
    """In an operation's `finally`: a record still "running" was cut short (Ctrl-C, the
    engine went away); say so, with what runs now."""
    if is_running(platform, record):
        finish(
            platform,
            record,
            states_or(client, record.project, fallback),
            {},
            "interrupted",
            "interrupted: see ./stack status for what runs now",
        )


def is_running(platform: Platform, record: Record) -> bool:
    """Whether the record's file still says "running" (its operation has not finished it)."""
    try:
        raw = json.loads((deploys_dir(platform) / f"{record.id}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return True
    return bool(raw.get("result") == "running")


def load(platform: Platform, env: Environment, name: str) -> Record:
    """The record called `name` (a file name or its stem); Refused with the reason otherwise."""
    stem = Path(name).name.removesuffix(".json")
    match = NAME_PATTERN.fullmatch(f"{stem}.json")
    hint = f"'./stack deploy history{' --dev' if env.name == 'dev' else ''}' lists the records."
    if match is None:
        raise Refused(
            f"{name!r} is not a deploy record name (like {env.name}_20260101_120000).", hint
        )
    if match.group(1) != env.name:
        raise Refused(f"Record {stem} is a {match.group(1)} record, not {env.name}'s.", hint)
    path = deploys_dir(platform) / f"{stem}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(f"No deploy record {stem} in {deploys_dir(platform)}.", hint) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Refused(f"Deploy record {stem} cannot be read: {err}.", hint) from None
    try:
        record = parse(raw)
    except (KeyError, TypeError, ValueError) as err:
        raise Refused(
            f"Deploy record {stem} is damaged ({type(err).__name__}: {err}).", hint
        ) from None
    if record.env != env.name or record.project != env.project:
        raise Refused(
            f"Deploy record {stem} belongs to project {record.project}, not {env.project}.", hint
        )
    return record


def parse(raw: dict[str, Any]) -> Record:
    if raw.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown record version {raw.get('version')!r}")
    fields = {k: v for k, v in raw.items() if k != "version"}
    fields["services"] = {
        name: ServiceChange(
            before=_state(change.get("before")),
            after=_state(change.get("after")),
            result=str(change.get("result", "")),
        )
        for name, change in fields.get("services", {}).items()
    }
    return Record(**fields)


def _state(raw: dict[str, Any] | None) -> ServiceState | None:
    return ServiceState(**raw) if raw else None


def history(platform: Platform, env: str) -> list[Record]:
    """The env's readable records, newest first (a damaged file is skipped, not fatal)."""
    found: list[Record] = []
    directory = deploys_dir(platform)
    if not directory.is_dir():
        return found
    for path in directory.glob(f"{env}_*.json"):
        if NAME_PATTERN.fullmatch(path.name) is None:
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            found.append(parse(json.loads(path.read_text(encoding="utf-8"))))
    if any(record.result == "running" for record in found) and not _busy(platform, env):
        # Nobody holds the lock: that operation was killed (SIGKILL, power) mid-way.
        found = [
            replace(
                r,
                result="killed",
                summary="killed before it finished: see ./stack status for what runs now",
            )
            if r.result == "running"
            else r
            for r in found
        ]
    return sorted(found, key=lambda record: (record.started, record.id), reverse=True)


def _busy(platform: Platform, env: str) -> bool:
    project = platform.dev_project if env == "dev" else platform.prod_project
    return locks.held_elsewhere(platform.locks_dir, project)


def default_target(records: list[Record]) -> Record | None:
    """What `rollback` undoes by default: the newest finished deploy not undone already (by
    the health gate or by a later rollback). Repeated rollbacks step further back."""
    undone = {
        record.undoes
        for record in records
        if record.operation == "rollback" and record.result == "ok"
    }
    for record in records:
        if (
            record.operation == "deploy"
            and record.id not in undone
            and not record.rolled_back
            and record.result != "running"
        ):
            return record
    return None


def needed_images(records: list[Record], deploys: int = 3) -> list[tuple[str, str, ServiceState]]:
    """(record id, service, state) for every image a rollback of the newest `deploys` deploys
    not undone yet would need: what must not be pruned."""
    needed = []
    remaining = list(records)
    for _ in range(deploys):
        target = default_target(remaining)
        if target is None:
            break
        needed += [
            (target.id, name, change.before)
            for name, change in sorted(target.services.items())
            if change.before
        ]
        remaining = [r for r in remaining if r.id != target.id and r.started <= target.started]
    return needed


def previous(records: list[Record], record: Record) -> Record | None:
    """The newest record older than `record` whose compose files were left running: those
    are `record`'s "before" (a deploy the health gate rolled back left the ones before it)."""
    older = [
        r for r in records if (r.started, r.id) < (record.started, record.id) and not r.rolled_back
    ]
    return older[0] if older else None
