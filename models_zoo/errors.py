"""Errors a model can raise, each saying whether a retry could help.

Workers retry only ``retryable`` errors (a busy GPU, a file system hiccup); everything else is
recorded once, with its reason, and the job goes on or stops.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class: ``retryable`` tells the worker whether trying again may succeed."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class PermanentModelError(ModelError):
    """Retrying will fail the same way: a missing model, a bad file, a wrong configuration."""

    retryable = False


class TransientModelError(ModelError):
    """A retry may succeed: out of GPU memory under contention, a temporary I/O failure."""

    retryable = True


class ModelUnavailableError(PermanentModelError):
    """The model cannot be loaded offline on this machine; the message says why and where we looked."""

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"model {model_id!r} is not available offline: {reason}")
        self.model_id = model_id
        self.reason = reason


class InputError(PermanentModelError):
    """One input item (an audio file, a text) cannot be processed; the job records it and goes on."""

    def __init__(self, reason: str, *, item: str = "") -> None:
        super().__init__(f"{item}: {reason}" if item else reason)
        self.item = item
        self.reason = reason
