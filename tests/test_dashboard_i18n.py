"""Every string the lead dashboard shows is in the English, Hindi and Urdu catalogs (frontend/src/i18n)."""

from __future__ import annotations

import json
import re
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[1] / "frontend" / "src"
CATALOGS = {code: json.loads((FRONTEND / "i18n" / f"{code}.json").read_text(encoding="utf-8")) for code in ("en", "hi", "ur")}
# Keys built at run time from a status or level of measurement.
DYNAMIC = {
    "dash.job_": ("pending", "running", "succeeded", "failed", "cancelled"),
    "dash.level_": ("nominal", "masi", "interval"),
    "dash.method_": ("majority", "dawid_skene", "mace"),
    "dash.tie_": ("abstain", "prefer_order", "random"),
    "dash.rule_": ("share", "mean_intensity", "dawid_skene", "mace"),
}


def _keys_used() -> set[str]:
    source = (FRONTEND / "dashboard.ts").read_text(encoding="utf-8") + (FRONTEND / "charts.ts").read_text(encoding="utf-8")
    keys = {key for key in re.findall(r'"((?:dash|manage|projects|role|perspective|annotate)\.[a-z_]+)"', source)}
    for prefix, suffixes in DYNAMIC.items():
        assert f"`{prefix}${{" in source, f"{prefix} is no longer built at run time; update DYNAMIC"
        keys.update(prefix + suffix for suffix in suffixes)
    return keys


def test_every_dashboard_string_is_in_every_catalog() -> None:
    used = _keys_used()
    assert len(used) > 60
    for code, catalog in CATALOGS.items():
        missing = sorted(used - set(catalog))
        assert not missing, f"{code}.json lacks {missing}"


def test_the_dashboard_keys_are_translated_not_copied() -> None:
    dash = [key for key in CATALOGS["en"] if key.startswith("dash.")]
    for code in ("hi", "ur"):
        same = [key for key in dash if CATALOGS[code][key] == CATALOGS["en"][key]]
        # Formula-only strings (P(α < 0.667), CCC … MAE …) read the same in every language.
        assert set(same) <= {"dash.below_tentative", "dash.metrics_numeric"}, (code, same)


def test_every_review_and_export_string_is_in_every_catalog() -> None:
    source = "".join((FRONTEND / name).read_text(encoding="utf-8")
                     for name in ("review.ts", "exports.ts", "widgets.ts", "imports.ts", "projects.ts"))
    used = set(re.findall(r'"((?:review|export|form|help|import|projects)\.[a-z_]+)"', source))
    used |= {f"import.status_{s}" for s in ("pending", "running", "succeeded", "failed", "cancelled")}
    used |= {f"import.count_{c}" for c in ("created", "annotations", "labels_attached", "blank_cells", "duplicates",
                                            "cross_split_texts", "rejected_rows")}
    used |= {f"import.preset_{p}" for p in ("brighter_raters", "brighter", "mahaemotions", "meld", "emobank",
                                             "emobank_ratings")}
    used |= {f"review.reason_{r}" for r in ("flagged", "tie", "low_agreement")}
    used |= {f"review.origin_{o}" for o in ("human", "llm", "model")}
    assert "review.decide" in used and "form.none_of_these" in used
    for code, catalog in CATALOGS.items():
        missing = sorted(used - set(catalog))
        assert not missing, f"{code}.json lacks {missing}"
    for code in ("hi", "ur"):
        copied = [k for k in used if k.startswith("review.") and CATALOGS[code][k] == CATALOGS["en"][k]]
        assert not copied, (code, copied)
