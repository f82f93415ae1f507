"""The plain case of next item and submit on PostgreSQL, answered before Django's middleware and DRF.

``config.hot_path`` calls these for token-authenticated requests to ``NextItemView`` and ``SubmitView``; they run
the same services as those views and return the same bodies. Anything but success returns None (or raises
``Declined``) before a write, and the DRF view then answers the request as usual, errors and 204 included.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import ValidationError

from annotation import distribution, distribution_pg
from annotation.api_annotate import NextItemView, SubmitInSerializer, SubmitView, submit_on_sql
from annotation.schema import SchemaError
from config.drf import input_validated
from config.hot_path import HotHandler, HotRequest


def next_item(request: HotRequest) -> tuple[int, Any] | None:
    try:
        payload = distribution_pg.next_item(project_id=request.kwargs["project_id"], user_id=request.user_id)
    except distribution.DistributionError:
        return None
    return None if payload is None else (status.HTTP_200_OK, payload)


def submit(request: HotRequest) -> tuple[int, Any] | None:
    try:
        fields = input_validated(SubmitInSerializer, request.json())
        body, answer_status = submit_on_sql(request.kwargs["project_id"], request.user_id, fields)
    except (ValidationError, SchemaError, distribution.DistributionError):
        return None
    return answer_status, body


HANDLERS: dict[type, HotHandler] = {NextItemView: next_item, SubmitView: submit}


def handlers_for_database() -> dict[type, HotHandler]:
    """The handlers, where they can answer: on PostgreSQL (SQLite's ORM path has nothing to shortcut)."""
    return HANDLERS if distribution_pg.enabled() else {}
