"""Read `.env` the way Compose does, closely enough to guard it and mask it.

Values are never shown unmasked where the key or the value looks like a secret.
"""

from __future__ import annotations

import re
from pathlib import Path

from stack_tui.core.errors import Refused

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")
_SECRET_KEY = re.compile(r"PASS|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL|AUTH|DSN|URL", re.IGNORECASE)


def parse(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; a line that is neither that, blank nor a comment is an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise Refused(
            f"No .env file at {path}.",
            "Copy .env.example to .env and fill in the secrets, then run this again.",
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Refused(
            f"{path} is not valid UTF-8 (byte {err.start}).", "Fix the file's encoding."
        ) from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise Refused(
                f"{path}, line {number}: expected KEY=VALUE, found {_mask_line(stripped)!r}.",
                "Fix or remove that line in .env.",
            )
        key, value = match.groups()
        values[key] = _unquote(value)
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split(" #", 1)[0].rstrip()


def _mask_line(line: str) -> str:
    return line.split("=", 1)[0] + "=***" if "=" in line else line[:20]


def looks_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def mask(key: str, value: str) -> str:
    """The value as it may be shown: secrets become '***' (empty stays visibly empty)."""
    if not value:
        return "(empty)"
    return "***" if looks_secret(key) else value


def secret_values(values: dict[str, str]) -> list[str]:
    """Values that must never appear in output, longest first (for redaction)."""
    found = {v for k, v in values.items() if looks_secret(k) and len(v) >= 4}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
