"""The authorization matrix: every list endpoint x every role x every filter, against a table written by hand.

Each object of the world below says who may read it (and, for annotations, who may know their author). For every
persona and every filter value the test computes the expected rows from that table and compares them with what the
API lists; the detail endpoints answer 200 exactly for those rows and 404 for the rest. The rules (issue 18):

- annotators see only their own answers, and model/LLM labels only where the project shows suggestions; never
  imported labels (other raters' answers);
- reviewers see a project's annotations, with author names only where the quality policy shows them;
- imported labels and import jobs belong to the corpus's curators (its creator, leads and reviewers on it);
- a job is readable by whoever may read its subject; exports by leads and reviewers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotation.distribution.services import project_items_sync
from annotation.models import Flag, Origin, Prediction, ProjectItem, ProjectModel, ProjectQualityPolicy, Role
from annotation.services import annotation_create, membership_set, project_create
from jobs.models import JobKind, JobStatus
from jobs.services import job_create

pytestmark = pytest.mark.django_db

STAFF, CURATOR, LEAD, REVIEWER, ANNOTATOR, BEA, OUTSIDER = (
    "staff", "curator", "lead", "reviewer", "annotator", "bea", "outsider"
)
PERSONAS = [STAFF, CURATOR, LEAD, REVIEWER, ANNOTATOR, BEA, OUTSIDER]
MAIN_CORPUS = {STAFF, CURATOR, LEAD, REVIEWER, ANNOTATOR, BEA}  # who sees the corpus "Main" and its utterances


@dataclass
class Row:
    """One object of the world: its id, the attributes filters look at, who reads it and who may know its author."""

    pk: int
    attrs: dict[str, Any]
    readers: set[str]
    names: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)


@dataclass
class Matrix:
    users: dict[str, Any]
    ids: dict[str, int]
    annotations: dict[str, Row]
    utterances: dict[str, Row]
    jobs: dict[str, Row]
    corpora: dict[str, Row]
    projects: dict[str, Row]


@pytest.fixture
def matrix(world, make_user) -> Matrix:
    users = {
        STAFF: make_user("sam_staff", is_staff=True), CURATOR: world.curator, LEAD: world.lead,
        REVIEWER: world.reviewer, ANNOTATOR: world.annotator, BEA: make_user("bea_annotator"), OUTSIDER: world.outsider,
    }
    main, shown, private = world.project, None, world.private_project
    membership_set(project=main, user=users[BEA], role=Role.ANNOTATOR)
    # A second project on the same corpus that shows suggestions to annotators and names to reviewers.
    shown = project_create(
        name="Shown", corpus=world.corpus, schema_version=world.schema, created_by=world.lead, suggestion_policy="shown"
    )
    membership_set(project=shown, user=world.reviewer, role=Role.REVIEWER)
    membership_set(project=shown, user=world.annotator, role=Role.ANNOTATOR)
    ProjectQualityPolicy.objects.create(project=shown, show_annotator_names_to_reviewers=True)

    u1, u2, x3 = world.utterances
    p1 = world.private_utterance
    version = world.schema

    def made(utterance, value, *, project=None, annotator=None, origin=Origin.HUMAN, **extra):  # type: ignore[no-untyped-def]
        return annotation_create(
            utterance=utterance, schema_version=version, value=value, project=project, annotator=annotator,
            origin=origin, **extra,
        ).pk

    ann = {
        "imported": (world.imported_annotation.pk, u1, None, Origin.HUMAN),
        "imported_llm": (made(x3, {"emotion": "neutral"}, origin=Origin.LLM, model_version="gemma@1"), x3, None, Origin.LLM),
        "anika_main": (world.project_annotation.pk, u2, main, Origin.HUMAN),
        "bea_main": (made(u1, {"emotion": "fear"}, project=main, annotator=users[BEA]), u1, main, Origin.HUMAN),
        "model_main": (made(u1, {"emotion": "sadness"}, project=main, origin=Origin.MODEL, model_version="m@1"), u1, main,
                       Origin.MODEL),
        "anika_shown": (made(x3, {"emotion": "joy"}, project=shown, annotator=world.annotator), x3, shown, Origin.HUMAN),
        "model_shown": (made(x3, {"emotion": "anger"}, project=shown, origin=Origin.MODEL, model_version="m@1"), x3,
                        shown, Origin.MODEL),
        "private": (world.private_annotation.pk, p1, private, Origin.HUMAN),
    }
    curators = {STAFF, CURATOR, LEAD, REVIEWER}
    readers = {
        "imported": (curators, set(), {"joy"}),
        "imported_llm": (curators, set(), {"neutral"}),
        "anika_main": ({STAFF, LEAD, REVIEWER, ANNOTATOR}, {STAFF, LEAD, ANNOTATOR}, {"anger", "fear"}),
        "bea_main": ({STAFF, LEAD, REVIEWER, BEA}, {STAFF, LEAD, BEA}, {"fear"}),
        "model_main": ({STAFF, LEAD, REVIEWER}, set(), {"sadness"}),
        "anika_shown": ({STAFF, LEAD, REVIEWER, ANNOTATOR}, {STAFF, LEAD, REVIEWER, ANNOTATOR}, {"joy"}),
        "model_shown": ({STAFF, LEAD, REVIEWER, ANNOTATOR}, set(), {"anger"}),
        "private": ({STAFF, OUTSIDER}, {STAFF, OUTSIDER}, {"sadness"}),
    }
    annotations = {
        key: Row(
            pk=pk,
            attrs={"project": project.pk if project else None, "utterance": utterance.pk, "origin": origin,
                   "schema_version": version.pk, "imported": project is None},
            readers=readers[key][0], names=readers[key][1], labels=readers[key][2],
        )
        for key, (pk, utterance, project, origin) in ann.items()
    }
    utterances = {
        u.external_id: Row(
            pk=u.pk,
            attrs={"corpus": u.corpus_id, "language": u.language.code, "speaker": u.speaker_id,
                   "conversation": u.conversation_id, "has_audio": bool(u.audio), "external_id": u.external_id},
            readers=MAIN_CORPUS if u.corpus_id == world.corpus.pk else {STAFF, OUTSIDER},
        )
        for u in (u1, u2, x3, p1)
    }

    for project in (main, shown):
        ProjectModel.objects.create(project=project, card_id="card", task="text_emotion", model_version="m@1")
    for utterance in (u1, x3):
        Prediction.objects.create(utterance=utterance, model_version="m@1", scores={"joy": 0.9}, label="joy")
    for project in (main, shown):
        project_items_sync(project)
    Flag.objects.create(
        project=main, item=ProjectItem.objects.get(project=main, utterance=u2), created_by=world.annotator,
        note="clipped audio",
    )

    def job(kind, readers, *, by, corpus=None, project=None, status=JobStatus.PENDING):  # type: ignore[no-untyped-def]
        created = job_create(kind=kind, created_by=users[by], corpus=corpus, project=project)
        if status != JobStatus.PENDING:
            type(created).objects.filter(pk=created.pk).update(status=status)
        attrs = {"kind": kind, "status": status, "corpus": corpus.pk if corpus else None,
                 "project": project.pk if project else None}
        return Row(pk=created.pk, attrs=attrs, readers=readers)

    jobs = {
        "import_main": job(JobKind.IMPORT, curators, by=CURATOR, corpus=world.corpus, status=JobStatus.SUCCEEDED),
        "export_main": job(JobKind.EXPORT, {STAFF, LEAD, REVIEWER}, by=LEAD, project=main),
        "agreement_main": job(JobKind.AGREEMENT, {STAFF, LEAD, REVIEWER}, by=REVIEWER, project=main),
        "preannotate_shown": job(JobKind.PREANNOTATE, {STAFF, LEAD, REVIEWER}, by=LEAD, project=shown),
        "agreement_imported": job(JobKind.AGREEMENT, curators, by=CURATOR, corpus=world.corpus),
        "import_private": job(JobKind.IMPORT, {STAFF, OUTSIDER}, by=OUTSIDER, corpus=world.private_corpus),
        "no_subject": job(JobKind.AGREEMENT, {STAFF}, by=ANNOTATOR, status=JobStatus.FAILED),
    }
    corpora = {
        "main": Row(pk=world.corpus.pk, attrs={"slug": "main"}, readers=MAIN_CORPUS),
        "private": Row(pk=world.private_corpus.pk, attrs={"slug": "private"}, readers={STAFF, OUTSIDER}),
    }
    projects = {
        "main": Row(pk=main.pk, attrs={"corpus": world.corpus.pk}, readers={STAFF, LEAD, REVIEWER, ANNOTATOR, BEA}),
        "shown": Row(pk=shown.pk, attrs={"corpus": world.corpus.pk}, readers={STAFF, LEAD, REVIEWER, ANNOTATOR}),
        "private": Row(pk=private.pk, attrs={"corpus": world.private_corpus.pk}, readers={STAFF, OUTSIDER}),
    }
    ids = {
        "main": main.pk, "shown": shown.pk, "private": private.pk, "corpus": world.corpus.pk,
        "private_corpus": world.private_corpus.pk, "u1": u1.pk, "u2": u2.pk, "x3": x3.pk, "p1": p1.pk,
        "speaker": world.speaker.pk, "conversation": world.conversation.pk, "version": version.pk,
    }
    return Matrix(users=users, ids=ids, annotations=annotations, utterances=utterances, jobs=jobs, corpora=corpora,
                  projects=projects)


def client_of(matrix: Matrix, name: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(matrix.users[name])
    return client


def listed(client: APIClient, url: str) -> dict[int, dict[str, Any]]:
    """Every row of a paginated list, all pages followed."""
    rows: dict[int, dict[str, Any]] = {}
    while url:
        response = client.get(url)
        assert response.status_code == 200, (url, response.content)
        body = response.json()
        rows.update({row["id"]: row for row in body["results"]})
        url = body["next"]
    return rows


def expected(rows: dict[str, Row], name: str, **filters: Any) -> set[int]:
    return {row.pk for row in rows.values() if name in row.readers and all(row.attrs[k] == v for k, v in filters.items())}


# --- annotations -----------------------------------------------------------------------------------------------------


def annotation_filters(m: Matrix) -> list[tuple[str, dict[str, Any]]]:
    """(query string, the attributes it selects) for every filter of /api/annotations/ and its interesting values."""
    cases: list[tuple[str, dict[str, Any]]] = [("", {})]
    for project in ("main", "shown", "private"):
        cases.append((f"project={m.ids[project]}", {"project": m.ids[project]}))
    for utterance in ("u1", "u2", "x3", "p1"):
        cases.append((f"utterance={m.ids[utterance]}", {"utterance": m.ids[utterance]}))
    cases.append((f"schema_version={m.ids['version']}", {"schema_version": m.ids["version"]}))
    for origin in (Origin.HUMAN, Origin.MODEL, Origin.LLM):
        cases.append((f"origin={origin}", {"origin": origin}))
    cases += [("imported=true", {"imported": True}), ("imported=false", {"imported": False})]
    cases.append((f"project={m.ids['main']}&origin=model", {"project": m.ids["main"], "origin": Origin.MODEL}))
    cases.append((f"utterance={m.ids['x3']}&imported=true", {"utterance": m.ids["x3"], "imported": True}))
    return cases


@pytest.mark.parametrize("name", PERSONAS)
def test_annotations_list_and_detail_follow_the_rules_for_every_filter(matrix, name):
    client = client_of(matrix, name)
    for query, attrs in annotation_filters(matrix):
        rows = listed(client, f"/api/annotations/?{query}")
        assert set(rows) == expected(matrix.annotations, name, **attrs), (name, query)
    rows = listed(client, "/api/annotations/")
    by_pk = {row.pk: row for row in matrix.annotations.values()}
    for pk, body in rows.items():
        author = by_pk[pk]
        # The author's name only where this viewer may know it; machine and imported labels have no user.
        assert (body["annotator"] is not None) is (name in author.names), (name, pk, body["annotator"])
    for key, row in matrix.annotations.items():
        assert client.get(f"/api/annotations/{row.pk}/").status_code == (200 if name in row.readers else 404), key


# --- utterances ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_utterance_label_filter_counts_only_labels_the_viewer_may_read(matrix, name):
    client = client_of(matrix, name)
    by_utterance_pk = {row.pk: row for row in matrix.utterances.values()}
    for label in ("joy", "fear", "anger", "sadness", "neutral", "surprise"):
        want = {
            annotation.attrs["utterance"] for annotation in matrix.annotations.values()
            if name in annotation.readers and label in annotation.labels
            and name in by_utterance_pk[annotation.attrs["utterance"]].readers
        }
        assert set(listed(client, f"/api/utterances/?label={label}")) == want, (name, label)


@pytest.mark.parametrize("name", PERSONAS)
def test_utterance_filters_follow_the_corpus(matrix, name):
    m = matrix
    client = client_of(m, name)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}), (f"corpus={m.ids['corpus']}", {"corpus": m.ids["corpus"]}),
        (f"corpus={m.ids['private_corpus']}", {"corpus": m.ids["private_corpus"]}),
        ("language=mr", {"language": "mr"}), ("language=en", {"language": "en"}),
        (f"speaker={m.ids['speaker']}", {"speaker": m.ids["speaker"]}),
        (f"conversation={m.ids['conversation']}", {"conversation": m.ids["conversation"]}),
        ("has_audio=true", {"has_audio": True}), ("has_audio=false", {"has_audio": False}),
        ("external_id=p1", {"external_id": "p1"}), ("external_id=u2", {"external_id": "u2"}),
    ]
    for query, attrs in cases:
        assert set(listed(client, f"/api/utterances/?{query}")) == expected(m.utterances, name, **attrs), (name, query)
    want_search = {row.pk for row in m.utterances.values() if name in row.readers and row.attrs["external_id"][0] == "u"}
    assert set(listed(client, "/api/utterances/?search=u")) == want_search
    for row in m.utterances.values():
        assert client.get(f"/api/utterances/{row.pk}/").status_code == (200 if name in row.readers else 404)


# --- jobs ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_jobs_are_read_by_whoever_may_read_their_subject(matrix, name):
    m = matrix
    client = client_of(m, name)
    cases: list[tuple[str, dict[str, Any]]] = [("", {})]
    cases += [(f"kind={kind}", {"kind": kind}) for kind in JobKind.values]
    cases += [(f"status={status}", {"status": status}) for status in (JobStatus.PENDING, JobStatus.SUCCEEDED,
                                                                      JobStatus.FAILED)]
    cases += [(f"project={m.ids[p]}", {"project": m.ids[p]}) for p in ("main", "shown", "private")]
    cases += [(f"corpus={m.ids[c]}", {"corpus": m.ids[c]}) for c in ("corpus", "private_corpus")]
    cases.append((f"kind=agreement&corpus={m.ids['corpus']}", {"kind": "agreement", "corpus": m.ids["corpus"]}))
    for query, attrs in cases:
        assert set(listed(client, f"/api/jobs/?{query}")) == expected(m.jobs, name, **attrs), (name, query)
    for key, row in m.jobs.items():
        status = 200 if name in row.readers else 404
        assert client.get(f"/api/jobs/{row.pk}/").status_code == status, (name, key)
        assert client.get(f"/api/jobs/{row.pk}/errors/").status_code == status, (name, key)


# --- corpora, conversations, speakers, projects, schemas, languages -----------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_corpora_projects_and_their_parts_follow_membership(matrix, name):
    m = matrix
    client = client_of(m, name)
    assert set(listed(client, "/api/corpora/")) == expected(m.corpora, name)
    for slug in ("main", "private", "none"):
        assert set(listed(client, f"/api/corpora/?slug={slug}")) == expected(m.corpora, name, slug=slug)
    sees_main = name in MAIN_CORPUS
    for resource in ("conversations", "speakers"):
        for corpus, visible in (("corpus", sees_main), ("private_corpus", name in {STAFF, OUTSIDER})):
            rows = listed(client, f"/api/{resource}/?corpus={m.ids[corpus]}")
            assert bool(rows) is (visible and corpus == "corpus"), (name, resource, corpus)
        assert bool(listed(client, f"/api/{resource}/?external_id={'dia1' if resource == 'conversations' else 'Joey'}")) \
            is sees_main
    assert set(listed(client, "/api/projects/")) == expected(m.projects, name)
    for corpus in ("corpus", "private_corpus"):
        assert set(listed(client, f"/api/projects/?corpus={m.ids[corpus]}")) == expected(
            m.projects, name, corpus=m.ids[corpus]
        )
    for key, row in m.projects.items():
        assert client.get(f"/api/projects/{row.pk}/").status_code == (200 if name in row.readers else 404), key
    # Schemas and languages are shared vocabulary.
    assert len(listed(client, "/api/schemas/")) == 1 and len(listed(client, "/api/schemas/?slug=emotions")) == 1
    assert listed_languages(client) >= {"mr", "en"}


def listed_languages(client: APIClient) -> set[str]:
    response = client.get("/api/languages/?direction=ltr")
    assert response.status_code == 200
    return {row["code"] for row in response.json()["results"]}


# --- per-project lists -----------------------------------------------------------------------------------------------

# (persona, project) -> status of GET /api/projects/{id}/memberships/ and the usernames it lists
MEMBER_NAMES = {"main": {"lena_lead", "rahul_reviewer", "anika_annotator", "bea_annotator"},
                "shown": {"lena_lead", "rahul_reviewer", "anika_annotator"}, "private": {"oscar_outsider"}}


@pytest.mark.parametrize("name", PERSONAS)
def test_member_lists_show_names_to_leads_only(matrix, name):
    client = client_of(matrix, name)
    for key, row in matrix.projects.items():
        url = f"/api/projects/{row.pk}/memberships/"
        if name not in row.readers:
            assert client.get(url).status_code == 404
            continue
        names = {m["username"] for m in listed_plain(client, url)}
        leads = {STAFF} | ({LEAD} if key != "private" else {OUTSIDER})
        assert names == (MEMBER_NAMES[key] if name in leads else {matrix.users[name].username}), (name, key)


def listed_plain(client: APIClient, url: str) -> list[dict[str, Any]]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()["results"]


# persona -> status for the lead-, reviewer- and member-only lists of project "main"
PER_PROJECT = {
    #          flags review-queue predictions exports my-annotations
    STAFF: (404, 200, 200, 200, 404),
    CURATOR: (404, 404, 404, 404, 404),
    LEAD: (200, 200, 200, 200, 200),
    REVIEWER: (403, 200, 200, 200, 200),
    ANNOTATOR: (403, 403, 403, 403, 200),
    BEA: (403, 403, 403, 403, 200),
    OUTSIDER: (404, 404, 404, 404, 404),
}


@pytest.mark.parametrize("name", PERSONAS)
def test_per_project_lists_by_role(matrix, name):
    m = matrix
    client = client_of(m, name)
    main = m.ids["main"]
    urls = [f"/api/projects/{main}/flags/", f"/api/projects/{main}/review-queue/",
            f"/api/projects/{main}/predictions/", f"/api/projects/{main}/exports/",
            f"/api/projects/{main}/my-annotations/"]
    for url, status in zip(urls, PER_PROJECT[name], strict=True):
        response = client.get(url)
        assert response.status_code == status, (name, url, response.content)
        if status == 200 and url.endswith("my-annotations/"):
            mine = {row["id"] for row in response.json()["results"]}
            own = {ANNOTATOR: {"anika_main"}, BEA: {"bea_main"}}.get(name, set())
            assert mine == {m.annotations[key].pk for key in own}
        if status == 200 and url.endswith("predictions/"):
            utterances = {row["utterance"] for row in response.json()["results"]}
            assert utterances == {m.ids["u1"], m.ids["x3"]}
            filtered = client.get(f"{url}?utterance={m.ids['x3']}&model_version=m@1").json()["results"]
            assert [row["utterance"] for row in filtered] == [m.ids["x3"]]
    # Where the project shows suggestions, its annotators read the predictions too.
    shown = client.get(f"/api/projects/{m.ids['shown']}/predictions/")
    assert shown.status_code == {STAFF: 200, LEAD: 200, REVIEWER: 200, ANNOTATOR: 200}.get(name, 404)


@pytest.mark.parametrize(("project", "names_shown"), [("main", False), ("shown", True)])
def test_the_review_item_names_annotators_as_the_policy_says(matrix, project, names_shown):
    m = matrix
    utterance = m.ids["u2"] if project == "main" else m.ids["x3"]
    reviewer = client_of(m, REVIEWER).get(f"/api/projects/{m.ids[project]}/review-queue/{utterance}/").json()
    lead = client_of(m, LEAD).get(f"/api/projects/{m.ids[project]}/review-queue/{utterance}/").json()
    human = [a["rater"] for a in reviewer["annotations"] if a["origin"] == "human"]
    assert human and all((r == "anika_annotator") is names_shown for r in human)
    assert {a["rater"] for a in lead["annotations"] if a["origin"] == "human"} == {"anika_annotator"}


@pytest.mark.parametrize(
    "path",
    ["/api/corpora/", "/api/utterances/", "/api/conversations/", "/api/speakers/", "/api/projects/", "/api/schemas/",
     "/api/jobs/", "/api/languages/", "/api/annotations/", "/api/projects/{main}/memberships/",
     "/api/projects/{main}/flags/", "/api/projects/{main}/review-queue/", "/api/projects/{main}/predictions/",
     "/api/projects/{main}/exports/", "/api/projects/{main}/my-annotations/", "/api/invitations/"],
)
def test_anonymous_clients_are_refused_every_list(matrix, path):
    response = APIClient().get(path.format(main=matrix.ids["main"]))
    assert response.status_code in (401, 403)
