"""Resolve BCP-47 tags to Language rows, with script and direction derived from the tag."""

from __future__ import annotations

import langcodes

from corpora.models import Language, TextDirection

# Scripts written right to left (ISO 15924).
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Thaa", "Syrc", "Nkoo", "Adlm", "Rohg", "Samr", "Mand", "Yezi"})


class UnknownLanguageError(ValueError):
    pass


def normalise_language_tag(raw: str) -> str:
    """Return the canonical BCP-47 form of a tag, or raise UnknownLanguageError saying why."""
    tag = (raw or "").strip()
    if not tag:
        raise UnknownLanguageError("language code is empty")
    if len(tag) > 35 or not langcodes.tag_is_valid(tag):
        raise UnknownLanguageError(f"{tag!r} is not a valid BCP-47 language code (e.g. en, mr, hi-Latn, ar-EG)")
    language = langcodes.Language.get(tag)
    if language.language in (None, "und") or not language.is_valid():
        raise UnknownLanguageError(f"{tag!r} does not name a known language")
    return str(language.to_tag())


def language_describe(tag: str) -> tuple[str, str, str]:
    """(name, script, direction) for a canonical tag."""
    language = langcodes.Language.get(tag)
    script = language.script or language.maximize().script or "Zyyy"
    direction = TextDirection.RTL if script in RTL_SCRIPTS else TextDirection.LTR
    return language.display_name("en"), script, direction


def language_get_or_create(raw: str) -> Language:
    tag = normalise_language_tag(raw)
    existing = Language.objects.filter(code=tag).first()
    if existing is not None:
        return existing
    name, script, direction = language_describe(tag)
    language, _ = Language.objects.get_or_create(code=tag, defaults={"name": name, "script": script, "direction": direction})
    return language
