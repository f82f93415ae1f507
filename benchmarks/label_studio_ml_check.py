"""Live check: a real Label Studio using Sentio as its ML backend shows Sentio's predictions on its tasks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_x python benchmarks/label_studio_ml_check.py

Sentio (a project with a head trained on its lead's labels, as tests/label_studio/test_ml_backend.py makes it) is
served on 127.0.0.1 by pytest-django's live server (Django's threaded WSGI server, the one runserver uses); Label
Studio (installed into var/label-studio/venv by benchmarks/label_studio_live.py if it is not there, started with
``label-studio start`` on SQLite) runs beside it. Then, as a user would through Label Studio's API: make a project
with the labelling config of Sentio's export, import tasks (two of Sentio's utterances with their ids, one new
text), connect Sentio as the ML backend (basic auth: the lead's user name and API token), run the Data Manager's
"Retrieve Predictions" on every task, and read the tasks' predictions back from Label Studio.

Not part of the test suite: installing Label Studio took 10 min here the first time and it needs about 4 min
to start on a fresh database (its migrations), far beyond what the suite's command may add. It is a pytest
module run on its own (this file's main) so that it builds Sentio's side with the suite's own fixtures.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "platform"), str(REPO / "benchmarks")]
    sys.exit(pytest.main([__file__, "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", "-s",
                          "--rootdir", str(REPO), "-o", "testpaths=benchmarks", *sys.argv[1:]]))

from tests.label_studio.conftest import media_in_tmp  # noqa: E402,F401  (media under tmp_path)
from tests.label_studio.test_ml_backend import trained  # noqa: E402,F401  (a head trained on the lead's labels)
from tests.predictions.conftest import world  # noqa: E402,F401  (the trilingual project with human labels)


@pytest.mark.django_db(transaction=True)  # the live server reads what the test wrote
def test_label_studio_shows_sentios_predictions(world, trained, live_server) -> None:  # noqa: F811
    import httpx
    import label_studio_live as live
    from rest_framework.authtoken.models import Token

    from annotation.export.label_studio import label_config
    from annotation.models import Prediction
    from annotation.schema import parse_questions

    install_s = live.install()
    print(f"\nLabel Studio {live.VERSION}: " + (f"installed in {install_s:.0f} s" if install_s else "already installed"))
    token = Token.objects.create(user=world.lead).key
    config = label_config(parse_questions(world.schema.questions))
    stored = world.unlabelled[0]  # predicted by the head and stored in Sentio
    stored_prediction = Prediction.objects.get(utterance=stored, model_version=trained.model_version)
    tasks = [{"data": {"text": stored.text, "utterance_id": stored.pk, "audio": ""}},
             {"data": {"text": world.unlabelled[1].text, "utterance_id": world.unlabelled[1].pk, "audio": ""}},
             {"data": {"text": "I am so happy and delighted, what a wonderful day", "audio": ""}}]
    started = time.perf_counter()
    backend_url = f"{live_server.url}/api/label-studio/projects/{world.project.pk}/ml"
    warm = httpx.get(f"{backend_url}/health", auth=(world.lead.get_username(), token), timeout=60)  # first request
    assert warm.status_code == 200, warm.text
    # Label Studio gives an ML backend 1 s to answer /health by default; this shared machine is slower than that.
    with live.label_studio(env={"ML_TIMEOUT_HEALTH": "30", "ML_CONNECTION_TIMEOUT": "30"}) as ls:
        print(f"Label Studio started in {time.perf_counter() - started:.0f} s at {ls.url}; Sentio at {live_server.url}")
        project = ls.api("POST", "/api/projects", json={"title": "From Sentio", "label_config": config})
        ls.api("POST", f"/api/projects/{project['id']}/import", json=tasks)
        backend = ls.api("POST", "/api/ml", json={
            "project": project["id"], "url": backend_url, "title": "Sentio", "auth_method": "BASIC_AUTH",
            "basic_auth_user": world.lead.get_username(), "basic_auth_pass": token, "is_interactive": False})
        print(f"ML backend connected: state {backend.get('state')}, model version {backend.get('model_version')!r}")
        assert backend["state"] in ("CO", "CONNECTED"), backend
        outcome = ls.api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project['id']}",
                         json={"project": project["id"], "selectedItems": {"all": True, "excluded": []}})
        print(f"Retrieve Predictions: {outcome}")
        shown: list[dict[str, Any]] = []
        for task in ls.api("GET", f"/api/tasks?project={project['id']}&fields=all&page_size=100")["tasks"]:
            predictions = ls.api("GET", f"/api/predictions?task={task['id']}")
            shown.append({"text": task["data"]["text"], "predictions": predictions})
            for prediction in predictions:
                choices = prediction["result"][0]["value"]["choices"]
                print(f"  task {task['id']} {task['data']['text'][:40]!r}: {choices} score {prediction['score']:.3f} "
                      f"model {prediction['model_version']!r}")
    assert len(shown) == 3 and all(len(item["predictions"]) == 1 for item in shown), shown
    by_text = {item["text"]: item["predictions"][0] for item in shown}
    assert all(p["model_version"] == trained.model_version for p in by_text.values())
    first = by_text[stored.text]
    assert first["result"][0]["value"]["choices"] == [stored_prediction.label]  # Sentio's stored prediction
    assert first["score"] == pytest.approx(stored_prediction.scores[stored_prediction.label], abs=1e-6)
    new = by_text["I am so happy and delighted, what a wonderful day"]
    assert new["result"][0]["value"]["choices"] == ["joy"]  # run by the head in the request
    assert (new["result"][0]["from_name"], new["result"][0]["to_name"]) == ("emotion", "text")
