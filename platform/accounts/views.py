"""Server-rendered pages: sign in/out and the shells that load the browser UI (frontend/).

The pages carry no user data beyond what the templates escape; the UI fetches everything else from the JSON API,
which enforces membership. Each page sets the CSRF cookie the UI sends back as X-CSRFToken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods
from django.views.static import serve

from accounts.selectors import api_tokens_of
from accounts.services import api_token_replace, api_tokens_revoke
from annotation.models import Project
from annotation.permissions import project_can_create, project_can_manage
from annotation.quality.selectors import (
    QualityForbidden,
    QualityNotFound,
    corpus_for_quality_get,
    project_for_reviewer_get,
    review_queue,
)
from annotation.selectors import projects_visible_to
from corpora.models import Utterance
from corpora.selectors import corpora_visible_to

UI_LANGUAGE_COOKIE = "sentio_ui_lang"
# Languages of the UI's JSON catalogs (frontend/src/i18n) and the direction each is written in.
UI_LANGUAGES = {"en": "ltr", "hi": "ltr", "ur": "rtl"}
LOGIN_URL = "/accounts/login/"


def ui_language(request: HttpRequest) -> dict[str, str]:
    """The UI language chosen with the switcher (a cookie), so the first paint already has lang and dir right."""
    code = request.COOKIES.get(UI_LANGUAGE_COOKIE, "en")
    if code not in UI_LANGUAGES:
        code = "en"
    return {"ui_lang": code, "ui_dir": UI_LANGUAGES[code]}


def _page(request: HttpRequest, template: str, status: int = 200, **context: Any) -> HttpResponse:
    # The nav offers "New project" only to those who can start one (a refusal is no link to follow).
    can_create = SimpleLazyObject(lambda: project_can_create(request.user))
    return render(request, template, {**ui_language(request), "can_create_projects": can_create, **context}, status=status)


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """403 and 404 in the app's layout (JSON under /api/, as DRF answers there)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return _page(request, "error.html", status=status, error_status=status, error_message=message)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    text = str(exception) if exception and str(exception) else "You do not have permission to see this page."
    return error_page(request, 403, text)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_page(request, 404, "This page does not exist, or you cannot see it.")


class SignInView(auth_views.LoginView):
    next_page = "/projects/"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), **ui_language(self.request)}


class SignOutView(auth_views.LogoutView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), **ui_language(self.request)}


@ensure_csrf_cookie
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("projects")
    return _page(request, "home.html")


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def projects(request: HttpRequest) -> HttpResponse:
    return _page(request, "projects.html")


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    return _page(request, "annotate.html", project_id=project_id)


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_create(request: HttpRequest) -> HttpResponse:
    if not project_can_create(request.user):
        raise PermissionDenied("Starting a project needs a corpus you may edit: ask a project lead or an administrator.")
    return _page(request, "project_create.html")


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_manage(request: HttpRequest, project_id: int) -> HttpResponse:
    return _page(request, "project_manage.html", project_id=project_id)


def _reviewer_project(request: HttpRequest, project_id: int) -> Project:
    """The project, for its leads and reviewers (and staff): outsiders get 404, other members 403."""
    try:
        project, _role = project_for_reviewer_get(project_id=project_id, user=request.user)
    except QualityNotFound:
        raise Http404() from None
    except QualityForbidden as exc:
        raise PermissionDenied(str(exc)) from None
    return project


def _reviewer_page(request: HttpRequest, project_id: int, template: str) -> HttpResponse:
    _reviewer_project(request, project_id)
    return _page(request, template, project_id=project_id)


def _lead_page(request: HttpRequest, project_id: int, template: str, refusal: str) -> HttpResponse:
    """A page for the project's leads (and staff): outsiders get 404, other members 403 with ``refusal``."""
    project = projects_visible_to(request.user).filter(pk=project_id).first()
    if project is None:
        raise Http404()
    if not project_can_manage(request.user, project):
        raise PermissionDenied(refusal)
    return _page(request, template, project_id=project_id, corpus_id=project.corpus_id)


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    """The lead dashboard, for the project's leads and reviewers."""
    return _reviewer_page(request, project_id, "dashboard.html")


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_review(request: HttpRequest, project_id: int) -> HttpResponse:
    """The review queue and adjudication screen (frontend/src/review.ts), for leads and reviewers.

    The page names the queue's first item, so the screen asks for it together with the queue (one round trip less).
    """
    project = _reviewer_project(request, project_id)
    first = None if request.GET.get("item") else review_queue(project=project).values_list("pk", flat=True).first()
    return _page(request, "review.html", project_id=project_id, first_item=first)


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_items(request: HttpRequest, project_id: int) -> HttpResponse:
    """The item browser (frontend/src/browse.ts), for leads and reviewers."""
    return _reviewer_page(request, project_id, "items.html")


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_import(request: HttpRequest, project_id: int) -> HttpResponse:
    """Import files into the project's corpus (frontend/src/imports.ts), for its leads."""
    return _lead_page(request, project_id, "import.html", "Only the project's leads can import into its corpus.")


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def corpus_quality(request: HttpRequest, corpus_id: int) -> HttpResponse:
    """Agreement of a corpus's imported ratings, for its creator, the leads of its projects and staff."""
    try:
        corpus_for_quality_get(corpus_id=corpus_id, user=request.user)
    except QualityNotFound:
        raise Http404() from None
    except QualityForbidden as exc:
        raise PermissionDenied(str(exc)) from None
    return _page(request, "dashboard.html", corpus_id=corpus_id)


@login_required(login_url=LOGIN_URL)
@ensure_csrf_cookie
def project_models(request: HttpRequest, project_id: int) -> HttpResponse:
    """Models at work on the project, for its leads (and staff)."""
    return _lead_page(request, project_id, "project_models.html", "Only the project's leads can manage its models.")


@login_required(login_url=LOGIN_URL)
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens: when each was made and expires, Revoke (scripts using it are refused at once), and
    New token (shown once, on this answer only)."""
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "revoke":
            api_tokens_revoke(user=request.user)  # type: ignore[arg-type]
        elif action == "create":
            new_key = api_token_replace(user=request.user).key  # type: ignore[arg-type]
        else:
            return HttpResponse("Unknown action.", status=400, content_type="text/plain")
    response = _page(
        request, "api_tokens.html", tokens=api_tokens_of(user=request.user), new_key=new_key,  # type: ignore[arg-type]
    )
    response["Cache-Control"] = "no-store"  # a new key must not stay in any cache
    return response


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Local audio for signed-in users who can see its corpus (S3 storage hands out signed links instead)."""
    if settings.STORAGE_BACKEND != "local":
        raise Http404()
    if not request.user.is_authenticated:
        raise PermissionDenied()
    if not Utterance.objects.filter(audio=path, corpus__in=corpora_visible_to(request.user)).exists():
        raise Http404()
    # serve() joins safely under MEDIA_ROOT and refuses "..".
    return serve(request, path, document_root=str(Path(settings.MEDIA_ROOT)))
