"""Helpers shared by the fault suite: subprocess runs, checksums, fake backups, secret scans."""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import docker

from stack_tui.core import backups, compose, engine
from stack_tui.core.environments import Platform
from support import REPO, TEST_SECRETS, psql, wait_for

#: Rows of the big table: ~110 MB of table data, a dump of ~1.3 s on two cores.
BIG_ROWS = 800_000
BIG_TABLE = (
    "CREATE TABLE big (id int PRIMARY KEY, payload text); "  # noqa: S608 (a constant)
    "INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || repeat('x', 20) "
    f"FROM generate_series(1, {BIG_ROWS}) g"
)
NOTES_TABLE = (
    "CREATE TABLE notes (id int PRIMARY KEY, body text); "
    "INSERT INTO notes VALUES (1, 'first'), (2, 'second')"
)


def platform_code(platform: Platform) -> str:
    """Python source that rebuilds `platform` as `p` in another process."""
    return textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from stack_tui.core.environments import Platform
        p = Platform(root=Path({str(REPO)!r}), dev_project={platform.dev_project!r},
                     prod_project={platform.prod_project!r},
                     data_dir=Path({str(platform.data)!r}),
                     env_file=Path({str(platform.dotenv)!r}),
                     compose_dir=Path({str(platform.compose)!r}))
    """)


def cli_code(platform: Platform, argv: list[str], before: str = "") -> str:
    """Source of a process running `stack ARGV` against `platform` (exit code = the CLI's)."""
    return (
        platform_code(platform)
        + textwrap.dedent(before)
        + textwrap.dedent(f"""
        from stack_tui import cli
        sys.exit(cli.main({argv!r}, platform=p))
    """)
    )


def spawn(code: str, *args: str | bytes, **popen: object) -> subprocess.Popen[bytes]:
    """Start `python -c CODE ARGS...` with the repo's interpreter; output captured."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-c", code, *args], **popen)  # type: ignore[call-overload, no-any-return]


def run_cli(
    platform: Platform, argv: list[str], timeout: float = 120, before: str = ""
) -> subprocess.CompletedProcess[str]:
    """`stack ARGV` in a subprocess: real argv, real stdout (not a tty), real exit code."""
    proc = subprocess.run(
        [sys.executable, "-c", cli_code(platform, argv, before)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        errors="replace",
    )
    return proc


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup_checksums(directory: Path) -> dict[str, str]:
    """Every file carrying a backup's name, with its sha256."""
    return {p.name: sha256(p) for p in directory.iterdir() if backups.parse_name(p.name)}


def all_checksums(directory: Path) -> dict[str, str]:
    """Every entry of `directory` (symlinks by target text), to prove nothing changed."""
    found = {}
    for entry in directory.iterdir():
        if entry.is_symlink():
            found[entry.name] = "-> " + os.readlink(entry)
        elif entry.is_file():
            found[entry.name] = sha256(entry)
        else:
            found[entry.name] = "dir"
    return found


def partials(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def fake_backup(directory: Path, env: str, when: datetime, pad: int = 0) -> Path:
    """A small but valid backup (gzip, dump-complete trailer) named for `when`, 0600."""
    path = directory / backups.backup_name(env, when)
    body = (
        f"-- PostgreSQL database dump\n-- fake {env} {when:%c}\n"
        + "".join(f"-- {os.urandom(32).hex()}\n" for _ in range(pad))
        + "-- PostgreSQL database dump complete\n\n"
    )
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:
        raw.write(gzip.compress(body.encode(), compresslevel=1))
    assert backups.verify(path).ok
    return path


def start_postgres(platform: Platform, env: str = "dev") -> None:
    """(Re)start the env's Postgres alone and wait until it is healthy."""
    compose.run(platform.env(env), "up", "-d", "--wait", "postgres", timeout=120)


def postgres_running(platform: Platform, env: str = "dev") -> bool:
    client = docker.from_env()
    container = engine.service_container(client, platform.env(env).project, "postgres")
    return container is not None and container.status == "running"


def table_checksum(platform: Platform, env: str = "dev") -> str:
    """Count and an order-independent hash of every row of every user table."""
    tables = psql(
        platform,
        env,
        "SELECT string_agg(tablename, ' ' ORDER BY tablename) "
        "FROM pg_tables WHERE schemaname = 'public'",
    ).split()
    parts = [
        psql(
            platform,
            env,
            f"SELECT '{t}:' || count(*) || ':' || "  # noqa: S608 (our tables)
            f"coalesce(sum(hashtextextended(r::text, 0)), 0) FROM {t} r",
        )
        for t in tables
    ]
    return " ".join(parts)


def dump_sessions(platform: Platform, env: str = "dev") -> int:
    """pg_dump connections to the env's database (a dump must not outlive its process)."""
    return int(
        psql(
            platform,
            env,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'stack-tui/%/dump'",
        )
    )


def wait_no_dump(platform: Platform, env: str = "dev", timeout: float = 15) -> None:
    wait_for(lambda: dump_sessions(platform, env) == 0, timeout=timeout, interval=0.1)


def event_logs(platform: Platform) -> list[Path]:
    return sorted(platform.logs_dir.glob("*.jsonl"))


def last_result_in_logs(platform: Platform, env: str, operation: str) -> dict[str, object]:
    """The Result of the newest `{env}_{operation}_*.jsonl` event log."""
    logs = sorted(
        platform.logs_dir.glob(f"{env}_{operation}_*.jsonl"), key=lambda p: p.stat().st_mtime_ns
    )
    assert logs, f"no {env} {operation} event log in {platform.logs_dir}"
    lines = [json.loads(line) for line in logs[-1].read_text().splitlines() if line.strip()]
    assert lines and lines[-1]["kind"] == "result", lines[-1:]
    last: dict[str, object] = lines[-1]
    return last


#: A secret counts as shown when any 10 characters of it in a row are: Compose, for one,
#: echoes a value it failed to parse minus a suffix it took for a unit ("pg-secret-8c1f2").
LEAK_RUN = 10


def secret_leaks(texts: dict[str, str]) -> list[str]:
    """Which secret values from .env appear (whole or in part) where; empty: none."""
    found = []
    for where, text in texts.items():
        for key, value in TEST_SECRETS.items():
            runs = {value[i : i + LEAK_RUN] for i in range(len(value) - LEAK_RUN + 1)}
            if any(run in text for run in runs):
                found.append(f"{key} in {where}")
    return found


def written_files(platform: Platform) -> dict[str, str]:
    """The event logs and the audit log, by name, for a secret scan."""
    texts = {str(p): p.read_text(errors="replace") for p in event_logs(platform)}
    if platform.audit_log.exists():
        texts[str(platform.audit_log)] = platform.audit_log.read_text(errors="replace")
    return texts


# --- the TUI ------------------------------------------------------------------------------------


def widget_texts(app: Any) -> str:
    """Everything the app's screens hold as text (also what is scrolled out of view)."""
    from textual.widgets import DataTable, Input, Log, Static

    from stack_tui.tui.widgets.log_view import LogView

    out = []
    for screen in app.screen_stack:
        for widget in screen.query("*"):
            if isinstance(widget, Static):
                out.append(str(widget.content))
            elif isinstance(widget, Log):
                out.extend(widget.lines)
            elif isinstance(widget, LogView):
                out.extend(line.text for line in widget.lines)
            elif isinstance(widget, DataTable):
                for row in range(widget.row_count):
                    out.extend(str(cell) for cell in widget.get_row_at(row))
            elif isinstance(widget, Input):
                out.append(widget.value)
    out.extend(str(n.message) for n in app._notifications)
    return "\n".join(out)


def screen_text(app: Any) -> str:
    """The visible screen as text (from the SVG screenshot)."""
    svg = app.export_screenshot()
    return html.unescape(" ".join(re.findall(r">([^<>]+)</text>", svg))).replace("\xa0", " ")


def record_notifications(app: Any) -> list[str]:
    """Every notification the app shows, as 'title: message'."""
    shown: list[str] = []
    original = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> None:
        shown.append(f"{kwargs.get('title', '')}: {message}")
        original(message, *args, **kwargs)

    app.notify = notify
    return shown


class Tmux:
    """A private tmux server (its own socket) for real processes in real terminals."""

    def __init__(self, name: str) -> None:
        self.socket = name

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return done.stdout

    def start(
        self,
        session: str,
        command: list[str],
        size: tuple[int, int] = (120, 40),
        env: dict[str, str] | None = None,
    ) -> None:
        exports = [f"{k}={v}" for k, v in (env or {}).items()]
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                str(size[0]),
                "-y",
                str(size[1]),
                "env",
                *exports,
                *command,
            ],
            check=True,
            timeout=30,
        )

    def keys(self, session: str, *keys: str) -> None:
        self._run("send-keys", "-t", session, *keys)

    def screen(self, session: str) -> str:
        return self._run("capture-pane", "-p", "-t", session)

    def sessions(self) -> list[str]:
        return self._run("list-sessions", "-F", "#{session_name}").split()

    def pid(self, session: str) -> int:
        return int(self._run("display-message", "-p", "-t", session, "#{pane_pid}").strip())

    def kill(self) -> None:
        self._run("kill-server")
