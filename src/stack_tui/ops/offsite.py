"""Off-host copies of the backups, in a restic repository (core/offsite.py runs restic).

Each verified local backup goes to the repository as its plain SQL stream under
one stable file name per environment, so day after day only the change is
uploaded. Copying runs after the operation that took the backup has released
the environment's lock (`copy_after`), so it never holds the lock longer than
the local backup; its failure never fails that operation: it is a loud warning,
a line in status and check, an audit entry, and it is retried at the next
backup or by `./stack offsite push`, which uploads every local backup the
repository lacks. Retention mirrors the local one per environment (`forget
--keep-last N --tag env=...`, then prune), after a successful copy only.

One lock file (data/locks/offsite.lock) serialises our restic runs against one
another: forget/prune takes restic's exclusive lock, which would make a
concurrent upload of the other environment fail.

A copy fetched back (`restic dump`) is written like a backup: under a hidden
temporary name, compressed, fsynced, verified, then linked to its backup name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stack_tui.core import audit, backups, offsite
from stack_tui.core.environments import ENV_NAMES, Environment, Platform
from stack_tui.core.errors import Refused, StackError
from stack_tui.core.parity import HYGIENE, CheckRow
from stack_tui.ops.driver import resume
from stack_tui.ops.events import (
    Caution,
    Event,
    Outcome,
    OutputLine,
    Result,
    StepFinished,
    StepStarted,
)
from stack_tui.ops.runner import classify, failure

#: Where the last copy attempt of each environment is recorded (for status and check).
STATE_DIR = "offsite"
FETCH_SUFFIX = ".fetch.partial"
RETRY_HINT = "The local backup stands; the copy is retried at the next backup, or now with "


@dataclass(frozen=True)
class CopyState:
    """The last attempt to bring an environment's off-host copies up to date."""

    at: float
    ok: bool
    detail: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.at))
        return f"{'ok' if self.ok else 'FAILED'} at {when}: {self.detail}"


def push_command(env: Environment) -> str:
    return "./stack offsite push" + ("" if env.is_prod else " --dev")


# --- copying -----------------------------------------------------------------------------------


def copy_after(
    platform: Platform, env: Environment, events: Iterator[Event], reason: str
) -> Iterator[Event]:
    """Pass an operation's events through; once it has ended (its lock released), copy any
    backup it took off-host, then give its Result, with a line about the copy."""
    started = time.time()
    result: Result | None = None
    interrupt: KeyboardInterrupt | None = None
    try:
        while True:  # a Ctrl-C thrown in here goes on to the operation (ops.driver.resume)
            try:
                event = resume(events, interrupt)
            except StopIteration:
                break
            interrupt = None
            if isinstance(event, Result):
                result = event
                continue
            try:
                yield event
            except KeyboardInterrupt as thrown:
                interrupt = thrown
    finally:
        close = getattr(events, "close", None)
        if close:
            close()
    if result is None:
        return
    if _new_backup_since(platform, env, started) and _wanted(platform):
        copied = yield from _copy_reporting(platform, env, reason, since=started)
        result = replace(result, details=[*result.details, copied.detail])
    yield result


def _wanted(platform: Platform) -> bool:
    """A repository is set (a misconfigured one too: the copy then says what is wrong)."""
    return bool(offsite.settings(platform.dotenv).get(offsite.REPOSITORY_VAR))


def _new_backup_since(platform: Platform, env: Environment, started: float) -> bool:
    newest = backups.list_backups(platform.backups_dir, env.name)[:1]
    return bool(newest) and newest[0].taken.timestamp() >= int(started)


def _copy_reporting(
    platform: Platform, env: Environment, reason: str, since: float
) -> Generator[Event, None, CopyState]:
    """Copy, never raising: a failure is a warning, an audit entry and the recorded state."""
    started = time.time()
    try:
        uploaded = yield from push_steps(platform, env, reason=reason, since=since)
    except KeyboardInterrupt:  # the backup itself is done: say so, and what was not
        err = StackError("interrupted (Ctrl-C)")
        state = _record(platform, env, ok=False, detail=err.message)
        yield Caution(env.name, f"Off-host copy interrupted. {RETRY_HINT}{push_command(env)}.")
        return replace(state, detail="Off-host copy interrupted")
    except StackError as err:
        state = _record(platform, env, ok=False, detail=err.message)
        yield Caution(
            env.name,
            f"Off-host copy FAILED: {err.message} {err.hint} {RETRY_HINT}{push_command(env)}.",
        )
        audit.record(
            platform.audit_log,
            operation="offsite-push",
            env=env.name,
            arguments={"after": reason},
            result="failed",
            started=started,
            detail=err.message,
        )
        return replace(state, detail=f"Off-host copy FAILED: {err.message}")
    audit.record(
        platform.audit_log,
        operation="offsite-push",
        env=env.name,
        arguments={"after": reason},
        result="ok",
        started=started,
        detail=uploaded,
    )
    return CopyState(time.time(), True, f"Off-host: {uploaded}")


def push(platform: Platform, env: Environment) -> Iterator[Event]:
    """`./stack offsite push`: upload every local backup of `env` the repository lacks."""

    def body() -> Iterator[Event]:
        uploaded = yield from push_steps(platform, env, reason="")
        yield Result(
            env.name, operation="offsite-push", outcome=Outcome.OK, summary=f"Off-host: {uploaded}"
        )

    return _audited(
        platform,
        env.name,
        "offsite-push",
        {},
        body,
        on_failure=lambda err: _record(platform, env, ok=False, detail=err.message),
    )


def push_steps(
    platform: Platform, env: Environment, *, reason: str, since: float = 0.0
) -> Generator[Event, None, str]:
    """Upload `env`'s local backups missing off-host (oldest first), then apply retention.

    Backups taken at or after `since` are tagged with `reason`; older ones were
    taken by an earlier operation whose copy failed, and their reason is unrecorded.
    """
    config = offsite.require(platform.dotenv)
    keep = config.keep or backups.keep_setting()
    yield StepStarted(env.name, "offsite", detail=f"copy to {config.shown}")
    try:
        with _repository_lock(platform):
            offsite.refuse_if_read_only(config)
            offsite.remove_stale_locks(config)
            present = {s.stamp for s in offsite.snapshots(config, env.name)}
            local = backups.list_backups(platform.backups_dir, env.name)
            missing = [b for b in reversed(local) if _stamp(b) not in present]
            uploaded, skipped = 0, 0
            for info in missing:
                tagged = reason if reason and info.taken.timestamp() >= int(since) else ""
                copied = yield from _upload(config, env, info, tagged or "unrecorded")
                uploaded += copied
                skipped += not copied
            yield OutputLine(
                env.name, f"keeping the newest {keep} off-host copies", source="offsite"
            )
            offsite.forget(config, env.name, keep)
            count = len(offsite.snapshots(config, env.name))
    except StackError as err:
        yield StepFinished(env.name, "offsite", ok=False, detail=err.message)
        raise
    detail = (
        f"{uploaded} uploaded, {count} off-host cop{'y' if count == 1 else 'ies'} of "
        f"{env.name} kept (newest {keep}) in {config.shown}"
    )
    if skipped:
        detail += f"; {skipped} damaged or vanished local backup(s) not copied"
    _record(platform, env, ok=True, detail=detail)
    yield StepFinished(env.name, "offsite", detail=detail)
    return detail


def _upload(
    config: offsite.Config, env: Environment, info: backups.BackupInfo, reason: str
) -> Generator[Event, None, bool]:
    """Send one backup's SQL; False when the local file is damaged or gone (not copied)."""
    try:
        source = os.fdopen(os.open(info.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
    except OSError as err:
        yield Caution(env.name, f"{info.name} could not be read ({err.strerror}): not copied.")
        return False
    tags = {
        "env": env.name,
        "stamp": _stamp(info),
        "reason": reason.replace(" ", "-"),
        "size": str(info.size),
    }
    started = time.monotonic()
    with source:
        upload = offsite.Upload(config, env.name, info.taken, tags)
        try:
            # checks gzip and trailer on the way; a piece fills restic's pipe in one write
            for piece in backups.inflate(source, offsite.PIPE_SIZE):
                upload.write(piece)
        except backups.InvalidBackup as err:
            upload.abort()  # restic is stopped before its input ends: nothing saved
            yield Caution(env.name, f"{info.name} is damaged ({err.message}): not copied.")
            return False
        except BaseException:
            upload.abort()
            raise
        snapshot = upload.commit()
    yield OutputLine(
        env.name,
        f"{info.name} -> snapshot {snapshot} ({time.monotonic() - started:.1f} s)",
        source="offsite",
    )
    return True


def _stamp(info: backups.BackupInfo) -> str:
    return info.taken.strftime(backups.TIMESTAMP_FORMAT)


@contextlib.contextmanager
def _repository_lock(platform: Platform) -> Iterator[None]:
    """Our restic runs one at a time (not the environment's lock: nothing else waits on it)."""
    platform.locks_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(platform.locks_dir / "offsite.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- the state shown by status and check --------------------------------------------------------


def _state_path(platform: Platform, env: Environment) -> Path:
    return platform.data / STATE_DIR / f"{env.name}.json"


def _record(platform: Platform, env: Environment, *, ok: bool, detail: str) -> CopyState:
    state = CopyState(time.time(), ok, detail)
    path = _state_path(platform, env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as sink:
        json.dump({"at": state.at, "ok": ok, "detail": detail}, sink)
    temporary.replace(path)
    return state


def last_state(platform: Platform, env: Environment) -> CopyState | None:
    try:
        raw = json.loads(_state_path(platform, env).read_text())
        return CopyState(float(raw["at"]), bool(raw["ok"]), str(raw["detail"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status_line(platform: Platform, env: Environment) -> tuple[bool, str]:
    """(fine, text) about `env`'s off-host copies, without reaching the repository."""
    try:
        config = offsite.load(platform.dotenv)
    except StackError as err:
        return False, f"misconfigured: {err.message} {err.hint}"
    if config is None:
        return True, f"off (set {offsite.REPOSITORY_VAR} to keep encrypted copies elsewhere)"
    state = last_state(platform, env)
    if state is None:
        if not backups.list_backups(platform.backups_dir, env.name):
            return True, f"{config.shown}: no backup to copy yet"
        return False, f"{config.shown}: nothing copied yet ({push_command(env)})"
    if not state.ok:
        return False, f"{config.shown}: last copy {state.describe()} (retry: {push_command(env)})"
    return True, f"{config.shown}: last copy {state.describe()}"


@dataclass(frozen=True)
class PaneState:
    """An environment's off-host copies as the TUI's pane shows them."""

    ok: bool
    text: str
    at: float | None  # when the last copy attempt ended; None: none recorded


def pane_state(platform: Platform, env: Environment) -> PaneState | None:
    """The last copy's state and what it said (no repository access); None when off."""
    try:
        config = offsite.load(platform.dotenv)
    except StackError as err:
        return PaneState(False, f"misconfigured: {err.message} {err.hint}", None)
    if config is None:
        return None
    state = last_state(platform, env)
    if state is None:
        if not backups.list_backups(platform.backups_dir, env.name):
            return PaneState(True, f"no backup to copy yet ({config.shown})", None)
        return PaneState(False, f"nothing copied yet to {config.shown}", None)
    if not state.ok:
        return PaneState(False, state.detail, state.at)
    where = f"to {config.shown}"
    _, _, not_copied = state.detail.partition("; ")  # damaged or vanished local backups
    return PaneState(True, f"{where}; {not_copied}" if not_copied else where, state.at)


def check_row(platform: Platform) -> CheckRow:
    """`./stack check`'s line: configured or not, and whether each env's last copy worked."""
    lines = {name: status_line(platform, platform.env(name)) for name in ENV_NAMES}
    ok = all(fine for fine, _ in lines.values())
    try:
        configured = offsite.load(platform.dotenv) is not None
    except StackError as err:
        return CheckRow(HYGIENE, "off-host copies", False, detail=f"{err.message} {err.hint}")
    if not configured:
        return CheckRow(HYGIENE, "off-host copies", True, "off", "off", detail=lines["prod"][1])
    short = {name: "ok" if fine else "FAILED" for name, (fine, _) in lines.items()}
    detail = "; ".join(f"{name}: {text}" for name, (fine, text) in lines.items() if not fine)
    return CheckRow(
        HYGIENE,
        "off-host copies",
        ok,
        short["dev"],
        short["prod"],
        detail=detail or lines["prod"][1],
    )


# --- repository-wide operations ---------------------------------------------------------------


def init(platform: Platform) -> Iterator[Event]:
    """`./stack offsite init`: create the repository (format 2: compressed), or accept an
    existing one that opens with our password."""

    def body() -> Iterator[Event]:
        config = offsite.require(platform.dotenv)
        yield StepStarted("all", "offsite init", detail=config.shown)
        try:
            offsite.run(config, ["init", "--repository-version", offsite.REPOSITORY_VERSION])
            said = "created (repository format 2, compressed)"
        except offsite.OffsiteError as err:
            if "already holds" not in err.message:
                yield StepFinished("all", "offsite init", ok=False, detail=err.message)
                raise
            said = "already there"
        count = len(offsite.snapshots(config))  # proves access with our password
        yield StepFinished("all", "offsite init", detail=f"{said}; opens with the password")
        yield Result(
            "all",
            operation="offsite-init",
            outcome=Outcome.OK,
            summary=f"Off-host repository {config.shown}: {said}, {count} copies.",
        )

    return _audited(platform, "all", "offsite-init", {}, body)


def check(platform: Platform, read_data_subset: str = "") -> Iterator[Event]:
    """`./stack offsite check`: `restic check`, optionally reading part of the data back."""

    def body() -> Iterator[Event]:
        config = offsite.require(platform.dotenv)
        args = ["check"] + (["--read-data-subset", read_data_subset] if read_data_subset else [])
        yield StepStarted(
            "all", "offsite check", detail=f"restic {' '.join(args)} on {config.shown}"
        )
        with _repository_lock(platform):
            done = offsite.run(config, args)
            copies = offsite.snapshots(config)
        for line in done.stdout.splitlines():
            if line.strip():
                yield OutputLine("all", line, source="restic")
        counts = {name: sum(s.env == name for s in copies) for name in ENV_NAMES}
        yield StepFinished("all", "offsite check", detail="no errors found")
        yield Result(
            "all",
            operation="offsite-check",
            outcome=Outcome.OK,
            summary=f"Off-host repository {config.shown} is sound: "
            f"{counts['prod']} prod and {counts['dev']} dev copies.",
        )

    return _audited(platform, "all", "offsite-check", {"read_data_subset": read_data_subset}, body)


def copies(platform: Platform) -> list[offsite.Snapshot]:
    """Both environments' off-host copies, newest first (one per backup name)."""
    config = offsite.require(platform.dotenv)
    seen: dict[str, offsite.Snapshot] = {}
    for snapshot in offsite.snapshots(config):
        seen.setdefault(snapshot.name, snapshot)
    return list(seen.values())


def as_backup_info(platform: Platform, snapshot: offsite.Snapshot) -> backups.BackupInfo:
    """An off-host copy as the listing's row: the path it gets once fetched."""
    return backups.BackupInfo(
        platform.backups_dir / snapshot.name, snapshot.env, snapshot.taken, snapshot.size
    )


# --- fetching a copy back -----------------------------------------------------------------------


def fetch_steps(platform: Platform, name: str) -> Generator[Event, None, Path]:
    """Bring the off-host copy called `name` into data/backups/ as a verified backup."""
    parsed = backups.parse_name(name)
    if parsed is None:
        raise Refused(
            f"{name} is not a backup's name (expected ENV_YYYYMMDD_HHMMSS.sql.gz).",
            "List the off-host copies: ./stack backup list --offsite.",
        )
    env_name = parsed[0]
    directory = backups.ensure_private_dir(platform.backups_dir)
    final = directory / name
    if os.path.lexists(final):
        return final
    config = offsite.require(platform.dotenv)
    stamp = parsed[1].strftime(backups.TIMESTAMP_FORMAT)
    yield StepStarted(env_name, "fetch", detail=f"{name} from {config.shown}")
    started = time.monotonic()
    try:
        with _repository_lock(platform):
            found = [s for s in offsite.snapshots(config, env_name) if s.stamp == stamp]
            if not found:
                raise offsite.OffsiteError(
                    f"There is no off-host copy {name} in {config.shown}.",
                    "List them: ./stack backup list --offsite.",
                )
            path = _fetch_into(config, found[0], directory, final)
    except StackError as err:
        yield StepFinished(env_name, "fetch", ok=False, detail=err.message)
        raise
    size = backups.human_size(path.stat().st_size)
    yield StepFinished(
        env_name, "fetch", detail=f"{name} ({size}) verified, in {time.monotonic() - started:.1f} s"
    )
    return path


def _fetch_into(
    config: offsite.Config, snapshot: offsite.Snapshot, directory: Path, final: Path
) -> Path:
    partial = directory / f".{final.name}{FETCH_SUFFIX}"
    partial.unlink(missing_ok=True)  # left by a killed fetch; the repository lock is ours
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            compressor = zlib.compressobj(1, zlib.DEFLATED, backups.GZIP_WBITS)
            with offsite.dump(config, snapshot.id, snapshot.env) as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    _write_all(fd, compressor.compress(block))
            _write_all(fd, compressor.flush())
            os.fsync(fd)
        finally:
            os.close(fd)
        verification = backups.verify(partial)
        if not verification.ok:
            raise StackError(
                f"The copy fetched from {config.shown} failed verification: "
                f"{verification.reason}. Nothing was kept.",
                "Run ./stack offsite check; try another copy.",
            )
        try:
            os.link(partial, final)
        except FileExistsError:
            raise StackError(
                f"{final.name} appeared while fetching; nothing was overwritten.",
                "Use the file that is there now.",
            ) from None
        partial.unlink()
        backups.fsync_dir(directory)
    except OSError as err:
        partial.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StackError(
                f"The disk holding {directory} is full: {final.name} could not be "
                "fetched (the partial file was removed; local backups are "
                "untouched).",
                "Free some space there, then try again.",
            ) from None
        raise StackError(
            f"Writing {final.name} into {directory} failed: {err.strerror or err}.",
            "Check the filesystem.",
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    backups.remember_verified(final, verification)
    return final


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def restore_copy(
    platform: Platform, env: Environment, name: str, *, allow_cross_env: bool = False
) -> Iterator[Event]:
    """Fetch the off-host copy `name` (unless already local), then restore it as a file."""
    from stack_tui.ops.restore import restore

    def refusal(source: str) -> Refused | None:
        if allow_cross_env:
            return None
        flag = "--allow-dev-into-prod" if env.is_prod else "--allow-cross-env"
        return Refused(
            f"{name} is a backup of {source}: refusing to restore it into "
            f"{env.name}. Nothing was fetched.",
            f"To load {source}'s data into {env.name} on purpose, add {flag}.",
        )

    return _fetched_then(
        platform,
        env,
        name,
        "restore",
        refusal,
        lambda path: restore(platform, env, path, allow_cross_env=allow_cross_env),
    )


def drill_copy(platform: Platform, env: Environment, name: str) -> Iterator[Event]:
    """Fetch the off-host copy `name` (unless already local), then drill it as a file: the
    drill's outcome is stored beside the fetched file, as for any local backup."""
    from stack_tui.ops.drill import drill

    def refusal(source: str) -> Refused:
        other = "--dev" if source == "dev" else "--prod"
        return Refused(
            f"{name} is a backup of {source}, not of {env.name}. Nothing was fetched.",
            f"Drill it as {source}'s: ./stack backup drill {other} {name}",
        )

    return _fetched_then(
        platform, env, name, "drill", refusal, lambda path: drill(platform, env, path)
    )


def _fetched_then(
    platform: Platform,
    env: Environment,
    name: str,
    operation: str,
    refusal: Callable[[str], Refused | None],
    then: Callable[[Path], Iterator[Event]],
) -> Iterator[Event]:
    """Fetch `name` into data/backups/ (audited as offsite-fetch), then run `then` on the
    file; a copy of the other environment is refused first unless `refusal` allows it."""
    started = time.time()
    arguments = {"file": name}
    try:
        source = backups.parse_name(name)
        refused = refusal(source[0]) if source is not None and source[0] != env.name else None
        if refused is not None:
            raise refused
        path = yield from fetch_steps(platform, name)
    except StackError as err:
        audit.record(
            platform.audit_log,
            operation="offsite-fetch",
            env=env.name,
            arguments=arguments,
            result="failed",
            started=started,
            detail=err.message,
        )
        yield failure(env, operation, err)
        return
    audit.record(
        platform.audit_log,
        operation="offsite-fetch",
        env=env.name,
        arguments=arguments,
        result="ok",
        started=started,
        detail=str(path),
    )
    yield from then(path)


def _audited(
    platform: Platform,
    env: str,
    operation: str,
    arguments: dict[str, Any],
    body: Callable[[], Iterator[Event]],
    on_failure: Callable[[StackError], object] | None = None,
) -> Iterator[Event]:
    """Run `body` (no environment lock: the repository has its own), audit its outcome,
    turn a StackError into a failed Result."""
    started = time.time()
    outcome, detail = "interrupted", ""
    try:
        for event in body():
            if isinstance(event, Result):
                outcome, detail = "ok" if event.ok else "failed", event.summary
            yield event
    except StackError as err:
        if on_failure is not None:
            on_failure(err)
        result_outcome, cause = classify(err)
        outcome, detail = result_outcome.value, err.message
        yield Result(
            env,
            operation=operation,
            outcome=result_outcome,
            summary=err.message,
            details=[err.hint] if err.hint else [],
            cause=cause,
        )
    finally:
        audit.record(
            platform.audit_log,
            operation=operation,
            env=env,
            arguments=arguments,
            result=outcome,
            started=started,
            detail=detail,
        )
