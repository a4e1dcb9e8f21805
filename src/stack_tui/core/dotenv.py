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
                f"{path}, line {number}: expected KEY=VALUE, found {_describe_line(stripped)}.",
                "Fix or remove that line in .env (its content is not shown: it may be a secret).",
            )
        key, value = match.groups()
        values[key] = _unquote(value)
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value.split(" #", 1)[0].rstrip()


def _describe_line(line: str) -> str:
    """What is wrong with a bad line, without its content (a pasted secret must not leak)."""
    key = re.match(r"[A-Za-z_][A-Za-z0-9_]*", line)
    if "=" in line:
        return "a line whose name is not a valid variable name"
    if key and len(line) > key.end() and line[key.end()] in " :\t":
        return f"{key.group(0)!r} followed by {line[key.end()]!r} instead of '='"
    return "a line without '='"


#: `scheme://user:password@host`: the password part of a URL in any value.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-z0-9+.-]+://[^/@:\s]*:)(?P<password>[^@/\s]+)(?=@)", re.IGNORECASE
)


def mask_url_passwords(text: str) -> str:
    """`rest:https://user:secret@host/` -> `rest:https://user:***@host/`; the rest as is."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)


def looks_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def mask(key: str, value: str) -> str:
    """The value as it may be shown: secrets become '***' (empty stays visibly empty)."""
    if not value:
        return "(empty)"
    return "***" if looks_secret(key) else mask_url_passwords(value)


def secret_values(values: dict[str, str]) -> list[str]:
    """Values that must never appear in output, longest first (for redaction)."""
    found = {v for k, v in values.items() if looks_secret(k) and len(v) >= 4}
    found |= {
        m.group("password")
        for v in values.values()
        for m in _URL_PASSWORD.finditer(v)
        if len(m.group("password")) >= 4
    }
    return sorted(found, key=len, reverse=True)


#: Shortest piece of a secret that is redacted on its own: Compose sometimes quotes a
#: value cut short (e.g. `parsing "pg-secret-8c1f2"`), so whole-value matching misses it.
MIN_SECRET_FRAGMENT = 8


def redact(text: str, secrets: list[str]) -> str:
    """Replace every secret, and every run of MIN_SECRET_FRAGMENT+ characters of one, by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    for secret in secrets:
        if len(secret) < MIN_SECRET_FRAGMENT or not _shares_fragment(text, secret):
            continue
        for size in range(len(secret) - 1, MIN_SECRET_FRAGMENT - 1, -1):
            for start in range(len(secret) - size + 1):
                fragment = secret[start : start + size]
                if fragment in text:
                    text = text.replace(fragment, "***")
    return text


def _shares_fragment(text: str, secret: str) -> bool:
    return any(
        secret[start : start + MIN_SECRET_FRAGMENT] in text
        for start in range(len(secret) - MIN_SECRET_FRAGMENT + 1)
    )
