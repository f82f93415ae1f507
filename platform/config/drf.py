"""Django REST Framework helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class FirstRendererNegotiation(DefaultContentNegotiation):
    """For views with one renderer: answer with it whatever the Accept header says (DRF's documented pattern).

    Parsing Accept against one renderer cost more than rendering a small body; request bodies are still chosen
    by Content-Type as usual.
    """

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
