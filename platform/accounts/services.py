"""Accounts: API tokens (issue, expire, revoke) and the demo installation (accounts, a small multilingual corpus
with spoken clips, a project)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.demo_data import DEMO_ACCOUNTS, DEMO_SCHEMA_QUESTIONS, DEMO_UTTERANCES
from annotation.models import LabelSchema, LabelSchemaVersion, Project
from annotation.services import label_schema_create, membership_set, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus
from corpora.services import corpus_create
from jobs.models import JobStatus

DEMO_CORPUS_SLUG = "sentio-demo"
DEMO_SCHEMA_SLUG = "demo-emotions"
DEMO_PROJECT_NAME = "Demo: emotions in conversation"


# --- API tokens -------------------------------------------------------------------------------------------------------


def api_token_expired(token: Token) -> bool:
    return token.created <= timezone.now() - settings.TOKEN_TTL


@transaction.atomic
def api_token_issue(*, user: User) -> Token:
    """The user's token for scripts: the current one while it is valid, else a new one (an expired one is replaced)."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is not None and not api_token_expired(token):
        return token
    if token is not None:
        token.delete()
    return Token.objects.create(user=user)


@transaction.atomic
def api_token_replace(*, user: User) -> Token:
    """A new token for the user in place of any current one (one token per user); scripts using the old one are
    refused from their next request on. The user's row is locked, so two replacements at once make one token each in
    turn instead of failing on the one-token-per-user constraint."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    api_tokens_revoke(user=user)
    return Token.objects.create(user=user)


def api_tokens_revoke(*, user: User) -> int:
    """Delete every API token of the user; scripts using them are refused from their next request on."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


def api_tokens_revoke_if_credentials_changed(*, user: User) -> int:
    """Called before a user is saved: a new password or a deactivation revokes the user's tokens (rotation).

    Saves that name only other fields (``update_fields``, e.g. ``last_login`` at sign-in) do not come here.
    """
    if user.pk is None:
        return 0
    stored = User.objects.filter(pk=user.pk).values("password", "is_active").first()
    if stored is None or (stored["password"] == user.password and stored["is_active"] == user.is_active):
        return 0
    return api_tokens_revoke(user=user)


# --- the demo ---------------------------------------------------------------------------------------------------------


class DemoRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoSummary:
    corpus: Corpus
    project: Project
    utterances: int
    audio_clips: int


def _speak(text: str, voice: str, out: Path) -> bool:
    """Speak text to a WAV with espeak-ng; False when espeak-ng is not installed."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return False
    subprocess.run(  # noqa: S603 - fixed program, no shell
        [espeak, "-v", voice, "-s", "150", "-w", str(out), text], check=True, capture_output=True, timeout=60
    )
    return True


def demo_accounts_ensure() -> dict[str, User]:
    users: dict[str, User] = {}
    for username, (password, role, _languages) in DEMO_ACCOUNTS.items():
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = user.is_superuser = role == "lead"
        user.save()
        users[username] = user
    return users


def _demo_corpus_import(lead: User, workdir: Path) -> tuple[Corpus, int]:
    from corpora.importing.services import import_job_create, import_run

    manifest = workdir / "demo.csv"
    audio_dir = workdir / "audio"
    audio_dir.mkdir()
    clips = 0
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["conversation", "turn", "speaker", "language", "text", "audio"])
        for conversation, turn, speaker, language, text, voice in DEMO_UTTERANCES:
            audio_name = ""
            if voice and _speak(text, voice, audio_dir / f"{conversation}-{turn}.wav"):
                audio_name = f"{conversation}-{turn}.wav"
                clips += 1
            writer.writerow([conversation, turn, speaker, language, text, audio_name])

    corpus = corpus_create(
        name="Sentio demo conversations", slug=DEMO_CORPUS_SLUG, license="CC0-1.0", created_by=lead,
        source="Written for the Sentio demo; speech synthesised with espeak-ng.",
        description="Short conversations in English, Hindi, Marathi, Arabic, Hebrew, Urdu and Chinese.",
    )
    mapping = {
        "text": "text", "language": "language", "speaker": "speaker", "conversation": "conversation",
        "turn_index": "turn", "audio": "audio",
    }
    with manifest.open("rb") as handle:
        job = import_job_create(
            corpus=corpus, files=[File(handle, name="demo.csv")], created_by=lead, enqueue=False,
            options={"format": "csv", "mapping": mapping, "mode": "all_or_nothing"},
            audio_folder=audio_dir if clips else None,
        )
    import_run(job_id=job.pk)
    job.refresh_from_db()
    if job.status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"The demo corpus did not import: {job.message} ({job.error_count} errors)")
    return corpus, clips


def demo_install() -> DemoSummary:
    """Idempotent: running it again resets the demo passwords and leaves existing data alone."""
    if settings.PRODUCTION:
        raise DemoRefused("The demo (with its well-known passwords) is refused when SENTIO_MODE=production.")
    users = demo_accounts_ensure()
    lead = users["lead"]
    corpus = Corpus.objects.filter(slug=DEMO_CORPUS_SLUG).first()
    clips = 0
    if corpus is None:
        with tempfile.TemporaryDirectory(prefix="sentio-demo-") as tmp:
            corpus, clips = _demo_corpus_import(lead, Path(tmp))
    with transaction.atomic():
        schema = LabelSchema.objects.filter(slug=DEMO_SCHEMA_SLUG).first()
        version = (
            LabelSchemaVersion.objects.filter(schema=schema).order_by("-version").first()
            if schema is not None
            else label_schema_create(
                name="Demo emotions", slug=DEMO_SCHEMA_SLUG, questions=DEMO_SCHEMA_QUESTIONS,
                perspectives=["listener"], created_by=lead,
            )
        )
        assert version is not None
        project = Project.objects.filter(name=DEMO_PROJECT_NAME, corpus=corpus).first()
        if project is None:
            project = project_create(
                name=DEMO_PROJECT_NAME, corpus=corpus, schema_version=version, created_by=lead, overlap=2,
                guidelines=(
                    "Label the emotion the speaker expresses in this turn, using the conversation before it. "
                    "Pick the main emotion, then every emotion you hear with its intensity (0 = absent, "
                    "3 = very strong). Valence: 1 very negative … 5 very positive. Arousal: 1 calm … 5 excited."
                ),
                suggestion_policy="shown",
            )
        for username, (_password, role, languages) in DEMO_ACCOUNTS.items():
            if role == "lead":
                continue
            membership_set(
                project=project, user=users[username], role=role,
                languages=[language_get_or_create(code) for code in languages],
            )
    return DemoSummary(corpus=corpus, project=project, utterances=corpus.utterances.count(), audio_clips=clips)
