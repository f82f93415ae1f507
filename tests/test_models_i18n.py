"""Every string the lead's Models screen shows is in the English, Hindi and Urdu catalogs (frontend/src/i18n)."""

from __future__ import annotations

import json
import re
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[1] / "frontend" / "src"
CATALOGS = {code: json.loads((FRONTEND / "i18n" / f"{code}.json").read_text(encoding="utf-8")) for code in ("en", "hi", "ur")}
# Keys built at run time from a job's kind and status, a model's task.
DYNAMIC = {
    "models.kind_": ("preannotate", "transcribe"),
    "models.status_": ("pending", "running", "succeeded", "failed", "cancelled"),
    "models.task_": ("text_emotion", "speech_emotion_categorical", "speech_emotion_dimensional", "asr", "embedding"),
    "models.count_": ("predicted", "predicted_already_done", "errors", "transcribed", "transcribed_already_done",
                      "predicted_skipped_trained_on", "text_predicted_skipped_trained_on",
                      "speech_predicted_skipped_trained_on", "items_with_uncertainty"),
    "models.source_": ("llm", "model"),
}


def _keys_used() -> set[str]:
    source = (FRONTEND / "models.ts").read_text(encoding="utf-8")
    keys = set(re.findall(r'"((?:models|projects|policy)\.[a-z_]+)"', source))
    keys.update(f"policy.{p}" for p in ("hidden", "shown", "prefilled"))
    for prefix, suffixes in DYNAMIC.items():
        assert f"`{prefix}${{" in source, f"{prefix} is no longer built at run time; update DYNAMIC"
        keys.update(prefix + suffix for suffix in suffixes)
    return keys


def test_every_models_string_is_in_every_catalog() -> None:
    used = _keys_used()
    assert len(used) > 80
    for code, catalog in CATALOGS.items():
        missing = sorted(used - set(catalog))
        assert not missing, f"{code}.json lacks {missing}"


def test_the_models_keys_are_translated_not_copied() -> None:
    keys = [key for key in CATALOGS["en"] if key.startswith("models.")]
    for code in ("hi", "ur"):
        same = [key for key in keys if CATALOGS[code][key] == CATALOGS["en"][key]]
        assert not same, (code, same)
