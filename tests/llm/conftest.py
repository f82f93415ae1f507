"""A small Marathi project with human labels, and a recording proxy in front of the real llama.cpp server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.llm_server import LlamaServer, Reply, ScriptedLLMServer
from tests.workers.conftest import celery_env  # noqa: F401

LABELS = ["joy", "sadness", "anger", "neutral"]
QUESTIONS = [{"key": "emotion", "type": "single_choice", "labels": LABELS, "required": True}]
SENTENCES = [
    ("मला आज खूप आनंद झाला.", "joy"), ("मी खूप दुःखी आहे.", "sadness"), ("मला खूप राग आला आहे.", "anger"),
    ("आज पाऊस पडला.", "neutral"), ("तू जिंकलास, अभिनंदन!", "joy"), ("तो गेला, मला रडू आले.", "sadness"),
    ("हे अन्यायकारक आहे, मी संतापलो.", "anger"), ("बस सात वाजता येते.", "neutral"),
    ("सुंदर दिवस आहे!", "joy"), ("माझा मित्र आजारी आहे.", "sadness"), ("खोटं बोलू नकोस!", "anger"),
    ("टेबलावर पुस्तक आहे.", "neutral"),
]
SPLITS = ["train"] * 6 + ["dev"] * 2 + ["test"] * 4


@dataclass
class LLMProject:
    project: Any
    utterances: list[Any]
    truth: dict[int, str]


@pytest.fixture
def llm_project(db, lead, make_user) -> LLMProject:  # type: ignore[no-untyped-def]
    from annotation.models import Annotation, Membership, Origin, Role
    from annotation.services import label_schema_create, project_create
    from corpora.models import Language, Utterance
    from corpora.services import corpus_create

    schema = label_schema_create(name="Maha", slug="maha", questions=QUESTIONS)
    corpus = corpus_create(name="Marathi tweets", license="CC-BY-4.0", created_by=lead)
    marathi, _ = Language.objects.get_or_create(code="mr", defaults={"name": "Marathi", "script": "Deva"})
    project = project_create(name="Maha LLM", corpus=corpus, schema_version=schema, created_by=lead, overlap=2)
    Membership.objects.update_or_create(project=project, user=lead, defaults={"role": Role.LEAD})
    raters = [make_user("rater_a"), make_user("rater_b")]
    utterances, truth = [], {}
    for index, ((text, label), split) in enumerate(zip(SENTENCES, SPLITS)):
        utterance = Utterance.objects.create(corpus=corpus, language=marathi, text=text, external_id=f"t{index}",
                                             metadata={"split": split}, content_hash=f"{index:032x}")
        utterances.append(utterance)
        truth[utterance.pk] = label
        if index < 10:  # the last two are unlabelled
            second = label if index % 3 else LABELS[(LABELS.index(label) + 1) % 4]
            for rater, value in zip(raters, (label, second)):
                Annotation.objects.create(utterance=utterance, project=project, schema_version=schema,
                                          value={"emotion": value}, origin=Origin.HUMAN, annotator=rater)
    return LLMProject(project, utterances, truth)


@pytest.fixture
def allow_loopback(settings):  # type: ignore[no-untyped-def]
    """The tests' llama.cpp server is on 127.0.0.1, which the SSRF guard refuses unless the operator allows it."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    return settings


class RecordingProxy(ScriptedLLMServer):
    """Forwards every chat completion to the real llama.cpp server and records it: which items were asked."""

    def __init__(self, upstream: LlamaServer) -> None:
        def forward(_n: int, body: dict[str, Any]) -> Reply:
            request = urllib.request.Request(
                f"{upstream.base_url}/chat/completions", data=json.dumps(body).encode(), method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {upstream.api_key}"})
            with urllib.request.urlopen(request, timeout=300) as response:
                answer = json.loads(response.read())
            usage = answer.get("usage") or {}
            return Reply(content=answer["choices"][0]["message"]["content"],
                         finish_reason=answer["choices"][0].get("finish_reason") or "stop",
                         usage=(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))

        super().__init__(forward)

    def asked_texts(self, texts: list[str], since: int = 0) -> list[str]:
        """The item texts of the requests from the ``since``-th on."""
        found = []
        for seen in self.seen[since:]:
            prompt = " ".join(m["content"] for m in seen.body["messages"])
            found += [t for t in texts if t in prompt]
        return found


@pytest.fixture
def recording_proxy(llama_server: LlamaServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(llama_server) as proxy:
        yield proxy
