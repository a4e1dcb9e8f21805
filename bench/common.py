"""What the benchmarks share: running operations, reading terminals and /proc, docs/benchmarks.md.

Importing it puts tests/ on the path, so the scripts can use the test platform
helpers of tests/support.py.
"""

from __future__ import annotations

import json
import os
import platform as host
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import docker  # noqa: E402

from stack_tui.core.environments import Platform  # noqa: E402
from stack_tui.ops.events import BackupTaken, Event, Result  # noqa: E402
from support import drive  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
TICK = os.sysconf("SC_CLK_TCK")
SIZE = ("120", "40")
LAUNCHER = REPO / "bench" / "tui_launch.py"


# --- operations ---------------------------------------------------------------------------------


def result(events: list[Event]) -> Result:
    """The operation's Result; the benchmark stops here if the operation failed."""
    last = events[-1]
    if not isinstance(last, Result) or not last.ok:
        raise SystemExit(f"operation failed: {last}")
    return last


def taken_path(done: Result) -> Path:
    """The file a backup operation wrote."""
    assert isinstance(done.payload, BackupTaken), done
    return Path(done.payload.path)


def run_ok(events: Iterable[Event]) -> Result:
    """Run an operation to its end, saying yes to every question; it must succeed."""
    return result(drive(events))


def platform_spec(platform: Platform) -> dict[str, str]:
    """A platform as JSON-able fields, for a benchmark's child process (`platform_from`)."""
    return {
        "root": str(platform.root),
        "dev": platform.dev_project,
        "prod": platform.prod_project,
        "data": str(platform.data),
        "env_file": str(platform.dotenv),
        "compose": str(platform.compose),
    }


def platform_from(spec: dict[str, str]) -> Platform:
    """The platform `platform_spec` described."""
    return Platform(
        root=Path(spec["root"]),
        dev_project=spec["dev"],
        prod_project=spec["prod"],
        data_dir=Path(spec["data"]),
        env_file=Path(spec["env_file"]),
        compose_dir=Path(spec["compose"]),
    )


def describe(platform: Platform) -> Path:
    """A JSON file describing `platform`, for bench/tui_launch.py."""
    spec = platform.data / "bench-platform.json"
    spec.write_text(
        json.dumps(
            {
                "root": str(platform.root),
                "dev": platform.dev_project,
                "prod": platform.prod_project,
                "data": str(platform.data),
                "env": str(platform.dotenv),
                "compose": str(platform.compose),
            }
        )
    )
    return spec


# --- polling, /proc, the machine ----------------------------------------------------------------


def compile_bytecode(*trees: Path) -> None:
    """Byte-compile the Python files under `trees`, as pip does when it installs a package and
    Python does on a module's first import. A launch benchmark compares launches, not
    compilers: Textual in the venv is compiled, and so must be every tree of ours that is
    measured, even where PYTHONDONTWRITEBYTECODE is set (it is on the shared test host, and
    there each launch would otherwise compile our modules from source again: about 60 ms)."""
    for tree in trees:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree)], check=True, capture_output=True
        )


def wait(
    condition: Callable[[], object], what: str, timeout: float = 30.0, poll: float = 0.01
) -> float:
    """Poll an outside condition every `poll` s; return how long it took to become true."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(what)
        time.sleep(poll)
    return time.monotonic() - started


def tree_ticks(root: int, reaped: bool = False) -> int:
    """utime + stime of `root` and its living descendants, in clock ticks; with `reaped`, plus
    what their dead children used (cutime + cstime)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    last = 15 if reaped else 13  # fields 11-14: utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = sum(int(f) for f in fields[11:last])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def cpu_model() -> str:
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )


def docker_version() -> str:
    return str(docker.from_env().version().get("Version", "?"))


# --- terminals ----------------------------------------------------------------------------------


class Session:
    """One UI in a 120x40 tmux session, read back with `capture-pane` as a person reads it.

    `socket`: in a private tmux server of that name, ended with the session. `pace`: seconds
    to wait after each key (a person's pace: ESC then a letter too fast reads as Alt).
    """

    def __init__(
        self, name: str, command: list[str], socket: str | None = None, pace: float = 0.0
    ) -> None:
        self.name, self.pace = name, pace
        self._tmux = ["tmux", *(["-L", socket] if socket else [])]
        self._end = "kill-server" if socket else "kill-session"
        subprocess.run(
            [
                *self._tmux,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                SIZE[0],
                "-y",
                SIZE[1],
                "env",
                "TERM=xterm-256color",
                *command,
            ],
            check=True,
            env={**os.environ, "TMUX": ""},
        )

    def _run(self, *args: str, check: bool = True) -> str:
        return subprocess.run(
            [*self._tmux, *args], capture_output=True, text=True, check=check
        ).stdout

    def screen(self) -> str:
        return self._run("capture-pane", "-p", "-t", self.name, check=False)

    def keys(self, *keys: str, literal: bool = False) -> None:
        for key in keys:
            self._run("send-keys", "-t", self.name, *(["-l"] if literal else []), key)
            if self.pace:
                time.sleep(self.pace)

    def pid(self) -> int:
        return int(self._run("display-message", "-p", "-t", self.name, "#{pane_pid}"))

    def pipe_to(self, path: Path | None) -> None:
        """Copy everything the UI writes to its terminal into `path` (None: stop)."""
        self._run("pipe-pane", "-t", self.name, *([] if path is None else [f"cat >> {path}"]))

    def close(self) -> None:
        self._run(
            self._end, *([] if self._end == "kill-server" else ["-t", self.name]), check=False
        )


def pane_row(screen: str, env: str, service: str) -> list[str]:
    """A service's cells (state, health, ...) in the TUI's dev (left) or prod (right) pane."""
    for line in screen.splitlines():
        half = line[:60] if env == "dev" else line[60:]
        found = re.search(rf"[│┃]\s+{service}\s+(.*)", half)
        if found:
            return found.group(1).split()
    return []


def pane_state(screen: str, env: str, service: str) -> str | None:
    """A service's state cell in the TUI's dev or prod pane."""
    row = pane_row(screen, env, service)
    return row[0] if row else None


# --- docs/benchmarks.md -------------------------------------------------------------------------


def write_doc(section: str, lines: list[str]) -> None:
    """Replace (or append, at the end) the `section` heading's section of docs/benchmarks.md,
    re-read just before writing; other sections stay as they are."""
    body = "\n".join([section, "", *lines]).rstrip() + "\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(section)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + body
    DOC.write_text(text)


def baseline_rev(given: str | None) -> str:
    """The tree "today" is measured from: the one given, else where this branch left main."""
    if given:
        return given
    return subprocess.run(
        ["git", "-C", str(REPO), "merge-base", "HEAD", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
