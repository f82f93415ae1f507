"""Every string of the reviewer's and lead's screens (review, item browser, import, schema editor, annotator
history) is in the English, Hindi and Urdu catalogs, translated rather than copied."""

from __future__ import annotations

import json
import re
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
SOURCES = ("review.ts", "browse.ts", "itemview.ts", "imports.ts", "schema_editor.ts", "annotate.ts", "lead.ts", "projects.ts")
CATALOGS = {code: json.loads((FRONTEND / "src" / "i18n" / f"{code}.json").read_text(encoding="utf-8")) for code in ("en", "hi", "ur")}
# Keys built at run time: prefix -> the values it is completed with.
DYNAMIC = {
    "status.": ("unassigned", "in_progress", "complete", "adjudicated", "flagged", "gold"),
    "reason.": ("flagged", "tie", "low_agreement", "gold"),
    "origin.": ("human", "model", "llm"),
    "event.": ("handed", "expired", "skipped", "annotated", "predicted_model", "predicted_llm", "edited", "flagged",
               "flag_resolved", "flag_dismissed", "adjudicated", "gold_set"),
    "import.field_": ("text", "language", "external_id", "speaker", "conversation", "turn_index", "audio", "start", "end"),
    "import.mode_": ("all_or_nothing", "skip_invalid"),
    "import.extra_": ("metadata", "ignore", "error"),
    "import.read_": ("text", "language", "speaker", "conversation", "turn_index", "external_id", "audio", "answers", "rater"),
    "import.count_": ("rows", "created", "annotations", "rejected_rows", "duplicates"),
    "import.status_": ("pending", "running", "succeeded", "failed", "cancelled"),
    "schema.type_": ("single_choice", "multi_label", "numeric", "text", "segments"),
    "schema.template_": ("ekman", "plutchik", "goemotions", "intensity", "vad5", "vad9", "perspectives"),
    "action.": ("undo", "history", "save_edit"),
}
NEW_NAMESPACES = ("review.", "items.", "item.", "import.", "gold.", "history.", "event.", "status.", "reason.", "origin.", "schema.", "error.")
# Read the same in every language: proper names and formula-like strings.
SAME_EVERYWHERE = {"schema.template_goemotions"}


def _keys_used() -> set[str]:
    source = "".join((FRONTEND / "src" / name).read_text(encoding="utf-8") for name in SOURCES)
    keys = set(re.findall(r'\bt\("([a-z_]+\.[a-z_0-9]+)"', source))
    keys |= set(re.findall(r'"((?:help|review|items|item|import|gold|history|status|reason|origin|event|schema)\.[a-z_0-9]+)"', source))
    for template in (FRONTEND / "templates").glob("*.html"):
        keys |= set(re.findall(r'data-i18n="([^"]+)"', template.read_text(encoding="utf-8")))
    for prefix, suffixes in DYNAMIC.items():
        assert f"`{prefix}${{" in source, f"{prefix} is no longer built at run time; update DYNAMIC"
        keys.update(prefix + suffix for suffix in suffixes)
    return keys


def test_every_screen_string_is_in_every_catalog() -> None:
    used = _keys_used()
    assert len(used) > 250
    for code, catalog in CATALOGS.items():
        missing = sorted(used - set(catalog))
        assert not missing, f"{code}.json lacks {missing}"


def test_the_new_strings_are_translated_not_copied() -> None:
    new = [key for key in CATALOGS["en"] if key.startswith(NEW_NAMESPACES)]
    assert len(new) > 200
    for code in ("hi", "ur"):
        same = [key for key in new if CATALOGS[code][key] == CATALOGS["en"][key] and key not in SAME_EVERYWHERE]
        assert not same, (code, same)


def test_placeholders_survive_translation() -> None:
    for key, english in CATALOGS["en"].items():
        wanted = set(re.findall(r"\{(\w+)\}", english))
        for code in ("hi", "ur"):
            assert set(re.findall(r"\{(\w+)\}", CATALOGS[code][key])) == wanted, (code, key)
