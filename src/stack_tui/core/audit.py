"""`data/audit.log`: one JSON line per mutating operation, whatever its outcome.

An environment on another host's engine has its lines kept on that host too (core.engine_audit).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from stack_tui.core import identity


def record(
    path: Path,
    *,
    operation: str,
    env: str,
    arguments: dict[str, Any],
    result: str,
    started: float,
    detail: str = "",
) -> None:
    """Append one line (O_APPEND: concurrent writers never interleave a line)."""
    actor = identity.current()
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "user": actor.user,
        "host": socket.gethostname(),  # the operator's machine: trails are also kept elsewhere
        "ssh_client": actor.ssh_client,
        "pid": actor.pid,
        "env": env,
        "operation": operation,
        "arguments": arguments,
        "result": result,
        "detail": detail,
        "duration_s": round(time.time() - started, 3),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(entry, default=str) + "\n").encode())
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]
