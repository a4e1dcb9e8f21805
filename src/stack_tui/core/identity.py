"""Who is acting: the user and, over SSH, where from. Recorded in locks and the audit log."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user: str
    ssh_client: str
    pid: int

    def describe(self) -> str:
        where = f" from {self.ssh_client}" if self.ssh_client else ""
        return f"{self.user}{where} (pid {self.pid})"


def current() -> Actor:
    user = os.environ.get("SUDO_USER") or _login()
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION") or ""
    return Actor(user=user, ssh_client=ssh.split(" ", 1)[0], pid=os.getpid())


def _login() -> str:
    import getpass  # and termios: only a writer of records asks who it is

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def running(pid: int) -> bool:
    """Whether process `pid` exists on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
