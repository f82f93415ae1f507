"""Writes for corpora."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.text import slugify

from corpora.models import Corpus


class CorpusError(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@transaction.atomic
def corpus_create(
    *, name: str, license: str, created_by: User | None, slug: str = "", source: str = "", description: str = ""
) -> Corpus:
    slug = slug or slugify(name)[:100]
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "a corpus needs a name"
    if not license.strip():
        errors["license"] = "say under which licence the data may be used (e.g. CC-BY-4.0)"
    if not slug:
        errors["slug"] = "could not make a slug from the name; give one"
    elif Corpus.objects.filter(slug=slug).exists():
        errors["slug"] = f"a corpus with slug {slug!r} already exists"
    if errors:
        raise CorpusError(errors)
    return Corpus.objects.create(
        name=name.strip(), slug=slug, license=license.strip(), source=source, description=description, created_by=created_by
    )


@transaction.atomic
def corpus_delete_if_empty(*, corpus: Corpus) -> bool:
    """Remove a corpus that holds nothing (a failed first import made it): no utterance, no project. Its import
    jobs go with it; True when it was removed."""
    from annotation.models import Project
    from jobs.models import Job

    locked = Corpus.objects.select_for_update().filter(pk=corpus.pk).first()
    if locked is None or locked.utterances.exists() or Project.objects.filter(corpus=locked).exists():
        return False
    jobs = Job.objects.filter(corpus=locked)
    stored = [entry.get("name") for params in jobs.values_list("params", flat=True) if isinstance(params, dict)
              for entry in [*params.get("files", []), {"name": params.get("audio_archive")}] if isinstance(entry, dict)]
    jobs.delete()
    locked.delete()
    names = [name for name in stored if isinstance(name, str) and name]


    def delete_files() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(delete_files)
    return True
