"""Read `.env` the way Compose does (python-dotenv), and keep its secrets out of output.

Values are never shown unmasked where the key looks like a secret. Redaction
replaces whole secret values (and their URL-encoded and base64 forms), never
fragments of them, so ordinary output such as container names stays intact.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

from dotenv.parser import Binding, parse_stream
from dotenv.variables import parse_variables

from stack_tui.core.errors import Refused

_SECRET_KEY = re.compile(r"PASS|SECRET|TOKEN|KEY|PRIVATE|CREDENTIAL|AUTH|DSN|URL", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
_SINGLE_QUOTED = re.compile(r"^\s*(?:export\s+)?[^=]*=\s*'")


def parse(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads them: quotes, `#` comments, escapes, and `${VAR}`
    interpolated from the process environment first, then earlier lines (single-quoted
    values stay literal). A line that is not a binding is refused without its content."""
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
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is None and not binding.error:
            continue  # blank line or comment
        bad_name = binding.key is not None and not _NAME.match(binding.key)
        if binding.error or bad_name or binding.key is None or binding.value is None:
            number = binding.original.line
            raise Refused(
                f"{path}, line {number}: expected KEY=VALUE, found {_describe(binding)}.",
                "Fix or remove that line in .env (its content is not shown: it may be a secret).",
            )
        values[binding.key] = _interpolated(binding, values, environ)
    return values


def _interpolated(binding: Binding, earlier: dict[str, str], environ: Mapping[str, str]) -> str:
    assert binding.value is not None
    if _SINGLE_QUOTED.match(binding.original.string):
        return binding.value
    lookup: dict[str, str | None] = {**earlier, **environ}
    return "".join(atom.resolve(lookup) for atom in parse_variables(binding.value))


def _describe(binding: Binding) -> str:
    """What is wrong with a bad line, without its content (a pasted secret must not leak)."""
    line = binding.original.string.strip().splitlines()[0] if binding.original.string else ""
    key = re.match(r"[A-Za-z_][A-Za-z0-9_]*", line)
    if binding.key is not None and binding.value is None and _NAME.match(binding.key):
        return "a line without '='"
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


def example(root: Path) -> dict[str, str]:
    """The values `.env.example` in the checkout gives, or none when there is no such file."""
    path = root / ".env.example"
    return parse(path, environ={}) if path.is_file() else {}


def placeholders(values: Mapping[str, str], example: Mapping[str, str]) -> list[str]:
    """Secret keys still holding the value `.env.example` gives them (e.g. `change-me`)."""
    return sorted(k for k, v in values.items() if looks_secret(k) and v and example.get(k) == v)


#: Shortest secret value that is redacted. Shorter ones would blank ordinary text
#: (`agent`, `admin`) wherever it appears; they are too weak to be worth hiding anyway.
MIN_REDACTED_LENGTH = 8
#: A value of letters only and shorter than this is taken as a word (`postgres`,
#: `password`, `platform`): redacting it would blank that word out of all output.
MIN_WORD_LIKE_LENGTH = 16


def redactable(value: str) -> bool:
    """Whether `value` is hidden in output: long enough, and not an ordinary word."""
    if len(value) < MIN_REDACTED_LENGTH:
        return False
    return not (value.isalpha() and len(value) < MIN_WORD_LIKE_LENGTH)


def encoded_forms(value: str) -> set[str]:
    """The value and the forms it takes in URLs and headers: URL-encoded, base64."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value, safe="")}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    return forms


def secret_values(values: Mapping[str, str]) -> list[str]:
    """Every text that must never appear in output, longest first (for `redact`)."""
    found: set[str] = set()
    for key, value in values.items():
        if looks_secret(key) and redactable(value):
            found |= {f for f in encoded_forms(value) if len(f) >= MIN_REDACTED_LENGTH}
        for url in _URL_PASSWORD.finditer(value):  # a password inside any URL is a secret
            if redactable(url.group("password")):
                found |= {
                    f for f in encoded_forms(url.group("password")) if len(f) >= MIN_REDACTED_LENGTH
                }
    return sorted(found, key=len, reverse=True)


_QUOTED = re.compile(r"\"([^\"\n]+)\"|'([^'\n]+)'")


def redact(text: str, secrets: list[str]) -> str:
    """Replace each whole secret (or an encoded form of it) by ***, and a quoted value
    that is a secret short of at most 2 characters: Compose quotes some values without
    their last character (`parsing "pg-secret-8c1f"`). No other part of a secret is touched."""
    for secret in secrets:
        text = text.replace(secret, "***")
    if secrets and ('"' in text or "'" in text):
        text = _QUOTED.sub(lambda quoted: _cut_short(quoted, secrets), text)
    return text


def _cut_short(quoted: re.Match[str], secrets: list[str]) -> str:
    inner = quoted.group(1) or quoted.group(2)
    if len(inner) < MIN_REDACTED_LENGTH:
        return quoted.group(0)
    for secret in secrets:
        if len(inner) >= len(secret) - 2 and (secret.startswith(inner) or secret.endswith(inner)):
            return quoted.group(0).replace(inner, "***")
    return quoted.group(0)
