"""Many annotators at once on PostgreSQL: overlap holds exactly, nothing is duplicated or lost.

Each thread is one annotator with its own API client and its own database connection. Clients retry
submissions (also two copies of one request at the same moment), a chaos thread expires holds under
their feet, and some items are skipped. Afterwards the database must show exactly ``overlap`` human
annotations per item, never two by one annotator on one item, and every annotation a client was
told about must exist.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, OrderingStrategy, ProjectItem, Reservation, ReservationStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.postgres("the concurrency guarantees rest on PostgreSQL row locks")]

ANNOTATORS = 12
ITEMS = 40
OVERLAP = 3
DEADLINE_S = 240


def test_many_annotators_with_retries_never_over_or_under_assign(make_project, make_items, make_user):
    make_items(ITEMS)
    people = [make_user(f"annotator{i:02d}") for i in range(ANNOTATORS)]
    project = make_project(overlap=OVERLAP, members=people, ordering_strategy=OrderingStrategy.RANDOM)
    # Half the annotators authenticate with API tokens, as real clients do.
    tokens = {user.pk: Token.objects.create(user=user).key for user in people[::2]}
    told: dict[int, tuple[int, dict]] = {}  # annotation id -> (annotator id, value) the client was answered with
    refusals: list[dict] = []
    failures: list[str] = []
    lock = threading.Lock()
    stop_chaos = threading.Event()
    started = time.monotonic()

    def client_for(user) -> APIClient:  # type: ignore[no-untyped-def]
        client = APIClient()
        if user.pk in tokens:
            client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[user.pk]}")
        else:
            client.force_authenticate(user)
        return client

    def submit(client: APIClient, body: dict) -> None:
        response = client.post(f"/api/projects/{project.pk}/submit/", body, format="json")
        with lock:
            if response.status_code in (200, 201):
                annotation = response.json()["annotation"]
                previous = told.setdefault(annotation["id"], (annotation["utterance"], annotation["value"]))
                if previous != (annotation["utterance"], annotation["value"]):
                    failures.append(f"retry answered a different annotation: {annotation}")
            elif response.status_code == 409:
                refusals.append(response.json())
            else:
                failures.append(f"submit answered {response.status_code}: {response.content[:200]!r}")

    def submit_from_own_connection(user, body: dict) -> None:  # type: ignore[no-untyped-def]
        client = client_for(user)
        try:
            submit(client, body)
        finally:
            connection.close()

    def annotate(user, seed: int) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(seed)
        client = client_for(user)
        skipped_once = False
        try:
            while time.monotonic() - started < DEADLINE_S:
                response = client.post(f"/api/projects/{project.pk}/next/")
                if response.status_code == 204:
                    if not ProjectItem.objects.filter(project=project, annotation_count__lt=OVERLAP).exists():
                        return
                    time.sleep(0.02)  # others hold what is left; it may come back
                    continue
                if response.status_code != 200:
                    with lock:
                        failures.append(f"next answered {response.status_code}")
                    return
                utterance_id = response.json()["utterance"]["id"]
                if not skipped_once and rng.random() < 0.3:
                    skipped_once = True
                    client.post(f"/api/projects/{project.pk}/skip/", {"utterance": utterance_id, "reason": "unsure"}, format="json")
                    continue
                body = {"client_id": str(uuid.uuid4()), "utterance": utterance_id,
                        "value": {"emotion": rng.choice(["joy", "anger", "neutral"])}, "lead_time_ms": rng.randrange(5000)}
                if rng.random() < 0.15:
                    # The same request sent twice at the same moment (a double click, a proxy retry).
                    twin = threading.Thread(target=submit_from_own_connection, args=(user, body))
                    twin.start()
                    submit(client, body)
                    twin.join()
                else:
                    submit(client, body)
                    while rng.random() < 0.3:  # the response was "lost": retry with the same client_id
                        submit(client, body)
        finally:
            connection.close()

    def chaos() -> None:
        rng = random.Random(7)
        try:
            while not stop_chaos.is_set():
                held = list(Reservation.objects.filter(project=project, status=ReservationStatus.HELD).values_list("pk", flat=True)[:50])
                if held:
                    Reservation.objects.filter(pk__in=rng.sample(held, max(1, len(held) // 4))).update(
                        expires_at=timezone.now() - timedelta(seconds=1)
                    )
                time.sleep(0.05)
        finally:
            connection.close()

    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    threads = [threading.Thread(target=annotate, args=(person, i)) for i, person in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop_chaos.set()
    chaos_thread.join()

    print(f"annotations told: {len(told)}, refusals: {Counter(r['code'] for r in refusals)}")
    assert not failures, failures[:5]
    per_item = Counter(
        dict(Annotation.objects.filter(project=project).values_list("utterance_id").annotate(n=Count("id")).order_by())
    )
    item_ids = list(ProjectItem.objects.filter(project=project).values_list("utterance_id", flat=True))
    assert len(item_ids) == ITEMS
    assert {per_item[utterance_id] for utterance_id in item_ids} == {OVERLAP}, "every item has exactly the overlap"
    pairs = Annotation.objects.filter(project=project).values("utterance_id", "annotator_id").annotate(n=Count("id"))
    assert max(row["n"] for row in pairs) == 1, "no annotator has two annotations on one item"
    stored = dict(Annotation.objects.filter(project=project).values_list("id", "value"))
    assert set(told) == set(stored), "every annotation a client was told about exists, and no other"
    assert all(stored[pk] == value for pk, (_, value) in told.items())
    counters = ProjectItem.objects.filter(project=project).values_list("annotation_count", "reserved_count")
    assert set(counters) == {(OVERLAP, 0)}
    assert all(r["code"] in {"item_complete", "already_annotated"} and r["detail"] for r in refusals), refusals[:3]
