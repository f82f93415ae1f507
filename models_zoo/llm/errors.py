"""What can go wrong when asking an LLM endpoint, each error saying whether a retry could help.

They extend ``models_zoo.errors`` so a worker treats an LLM call like any other model call: retry the
``retryable`` ones later, record the others once with their reason.
"""

from __future__ import annotations

from decimal import Decimal

from models_zoo.errors import PermanentModelError, TransientModelError


class LLMTimeoutError(TransientModelError):
    """The endpoint did not answer within the endpoint's timeout."""


class LLMConnectionError(TransientModelError):
    """The endpoint could not be reached (refused, reset, DNS)."""


class LLMBusyError(TransientModelError):
    """The endpoint said "later": 429 (rate limit), 408/409, or a 5xx, still so after the client's retries.

    ``retry_after`` is the wait in seconds the server asked for, when it said one.
    """

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class LLMRequestError(PermanentModelError):
    """The endpoint refused the request itself (400, 401, 403, 404, 422...): the same request fails again."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class LLMAnswerError(PermanentModelError):
    """The endpoint answered, but not with what the answer schema asks (bad JSON, a label outside the set,
    a truncated answer). The tokens were spent all the same, so the error carries them and their cost."""

    def __init__(self, reason: str, *, raw: str, prompt_tokens: int = 0, completion_tokens: int = 0,
                 cost: Decimal = Decimal(0)) -> None:
        super().__init__(f"the LLM's answer does not fit the schema: {reason}")
        self.reason = reason
        self.raw = raw
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cost = cost


class TemplateError(PermanentModelError):
    """A prompt template, its examples or its questions cannot be used; the message says what to fix."""
