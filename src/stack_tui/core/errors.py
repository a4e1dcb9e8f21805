"""One exception type the front ends catch: a message for a person, and a hint."""

from __future__ import annotations


class StackError(Exception):
    """An error an operator can act on: what went wrong and what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class EngineUnreachable(StackError):
    """The Docker engine does not answer."""


class LockHeld(StackError):
    """Another operation holds the environment's lock."""


class Refused(StackError):
    """The operation refused to run (bad input, a guard, no confirmation)."""
