"""The OpenAPI schema generates cleanly and validates; the Swagger page works under the CSP."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

EXPECTED_PATHS = {
    "/api/languages/", "/api/corpora/", "/api/corpora/{id}/", "/api/corpora/{id}/imports/", "/api/utterances/",
    "/api/utterances/{id}/", "/api/conversations/", "/api/speakers/", "/api/schemas/", "/api/schemas/{id}/versions/",
    "/api/projects/", "/api/projects/{id}/", "/api/projects/{id}/memberships/", "/api/annotations/", "/api/jobs/",
    "/api/jobs/{id}/", "/api/jobs/{id}/errors/", "/api/auth/token/",
}


def test_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yml"
    # --fail-on-warn turns any drf-spectacular warning or error into a failing exit.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    spec = yaml.safe_load(out.read_text())
    validate(spec)
    assert EXPECTED_PATHS <= set(spec["paths"])


def test_schema_documents_filters_and_upload():
    spec = SchemaGenerator().get_schema(request=None, public=True)
    utterance_params = {p["name"] for p in spec["paths"]["/api/utterances/"]["get"]["parameters"]}
    assert {"corpus", "language", "speaker", "conversation", "has_audio", "label", "external_id", "search", "page"} <= utterance_params
    upload = spec["paths"]["/api/corpora/{id}/imports/"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"] and "202" in upload["responses"]


class ScriptTags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self._in_script = False
        self.inline_code = ""

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_code += data.strip()


@pytest.mark.django_db
def test_swagger_page_renders_without_inline_scripts(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'self'" in script_src
    parser = ScriptTags()
    parser.feed(response.content.decode())
    assert parser.scripts and parser.inline_code == ""
    for attrs in parser.scripts:
        src = attrs.get("src") or ""
        assert src.startswith("/"), f"script not served by this site: {src!r}"
        assert client.get(src).status_code == 200, src
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_redoc_page_loads_everything_from_this_site(client):
    """ReDoc under the CSP: no inline script, no Google Fonts stylesheet, its bundle from drf-spectacular-sidecar."""
    response = client.get("/api/redoc/")
    assert response.status_code == 200
    html = response.content.decode()
    parser = ScriptTags()
    parser.feed(html)
    assert parser.scripts and parser.inline_code == ""
    assert "googleapis" not in html and "stylesheet" not in html
    for attrs in parser.scripts:
        src = attrs.get("src") or ""
        assert src.startswith("/"), f"script not served by this site: {src!r}"
        assert client.get(src).status_code == 200, src
