"""Diagnostics for us, not for the operator: tracebacks go to `data/logs/stack.log`.

The operator sees `StackError(message, hint)` texts and, for a bug, one line
saying where the details are; the traceback is written here (0600, rotated at
1 MiB, 3 old files kept), never to the terminal.
"""

from __future__ import annotations

import io
import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

#: The package's logger; modules log to children of it (`logging.getLogger(__name__)`).
LOGGER = "stack_tui"
FILE_NAME = "stack.log"
MAX_BYTES = 1 << 20
KEEP_FILES = 3


class _PrivateFile(RotatingFileHandler):
    """A rotating log file created 0600 whatever the umask."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding)


def log_to(logs_dir: Path) -> Path:
    """Send the package's log records (INFO and up) to `logs_dir/stack.log`; replaces an
    earlier file handler (tests open several platforms in one process)."""
    logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = logs_dir / FILE_NAME
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, _PrivateFile)]:
        logger.removeHandler(old)
        old.close()
    handler = _PrivateFile(path, maxBytes=MAX_BYTES, backupCount=KEEP_FILES, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # never to a terminal through a root handler
    return path
