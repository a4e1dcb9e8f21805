"""The rows and the report every check produces, and the four sections."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from stack_tui.core import dotenv

SAME = "parity-same"
DIFFERENT = "parity-different"
DRIFT = "drift"
HYGIENE = "hygiene"
SECTIONS = (SAME, DIFFERENT, DRIFT, HYGIENE)


Config = Mapping[str, Any]


@dataclass(frozen=True)
class CheckRow:
    """One line of a check table: both environments' values, and whether it holds."""

    section: str
    name: str
    ok: bool
    dev: str = ""
    prod: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckReport:
    """Every row of one check run; front ends print it, `--json` dumps `to_dict()`."""

    rows: tuple[CheckRow, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [row for row in self.rows if not row.ok]

    def section(self, name: str) -> list[CheckRow]:
        return [row for row in self.rows if row.section == name]

    def row(self, section: str, name: str) -> CheckRow:
        """The row called `name` in `section` (KeyError if it was not checked)."""
        for candidate in self.rows:
            if (candidate.section, candidate.name) == (section, name):
                return candidate
        raise KeyError(f"{section}/{name}")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": [row.to_dict() for row in self.rows]}

    def redacted(self, secrets: list[str]) -> CheckReport:
        """The same report with every secret value from `.env` replaced by ***, wherever it
        leaked into a value (a healthcheck command, a label)."""
        return CheckReport(
            tuple(
                replace(
                    row,
                    dev=dotenv.redact(row.dev, secrets),
                    prod=dotenv.redact(row.prod, secrets),
                    detail=dotenv.redact(row.detail, secrets),
                )
                for row in self.rows
            )
        )


def error_row(section: str, name: str, message: str, hint: str = "") -> CheckRow:
    """A check that could not run is a failure, with what to do about it."""
    return CheckRow(section, name, False, detail=f"{message} {hint}".strip())
