"""Label Studio tasks: a labelling config made from the schema, tasks with data, annotations (human) and
predictions (model/LLM), and validation with label-studio-sdk's ``LabelInterface``.

``LabelInterface.validate_task`` in label-studio-sdk 2.x calls ``validate_annotation()`` without its argument,
so validation here checks the config, each task's data keys and every annotation and prediction result with
the same interface methods (``validate``, ``validate_annotation``/``validate_prediction``) one by one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - builds XML, parses none
from collections.abc import Mapping, Sequence
from typing import Any

from annotation.schema import Question

TEXT_OBJECT = "text"
AUDIO_OBJECT = "audio"


def intensity_control(question: Question, index: int) -> str:
    return f"{question.key}_intensity_{index}"


def label_config(questions: Sequence[Question]) -> str:
    """A Label Studio labelling config (XML) with one control per question; label names are XML-escaped."""
    view = ET.Element("View")
    ET.SubElement(view, "Text", name=TEXT_OBJECT, value=f"${TEXT_OBJECT}")
    ET.SubElement(view, "Audio", name=AUDIO_OBJECT, value=f"${AUDIO_OBJECT}")
    for q in questions:
        title = q.title or q.key
        ET.SubElement(view, "Header", value=title)
        if q.type in ("single_choice", "multi_label"):
            choices = ET.SubElement(
                view, "Choices", name=q.key, toName=TEXT_OBJECT,
                choice="single" if q.type == "single_choice" else "multiple",
                required="true" if q.required else "false",
            )
            for label in q.labels:
                ET.SubElement(choices, "Choice", value=label)
            if q.type == "multi_label" and q.intensity:
                for i, label in enumerate(q.labels):
                    ET.SubElement(view, "Header", value=f"{title}: intensity of {label} (0-3)")
                    ET.SubElement(view, "Number", name=intensity_control(q, i), toName=TEXT_OBJECT, min="0", max="3")
        elif q.type == "numeric":
            attrs = {"name": q.key, "toName": TEXT_OBJECT, "min": f"{q.minimum:g}", "max": f"{q.maximum:g}"}
            if q.step is not None:
                attrs["step"] = f"{q.step:g}"
            ET.SubElement(view, "Number", attrs)
        elif q.type == "text":
            ET.SubElement(view, "TextArea", name=q.key, toName=TEXT_OBJECT, maxSubmissions="1")
        elif q.type == "segments":
            labels = ET.SubElement(view, "Labels", name=q.key, toName=AUDIO_OBJECT)
            for label in q.labels:
                ET.SubElement(labels, "Label", value=label)
    return ET.tostring(view, encoding="unicode")


def annotation_result(questions: Sequence[Question], value: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Label Studio result regions for one Sentio annotation value (already validated against the schema)."""
    result: list[dict[str, Any]] = []
    for q in questions:
        answer = value.get(q.key)
        if answer in (None, "", [], {}):
            continue
        base = {"from_name": q.key, "to_name": TEXT_OBJECT}
        if q.type == "single_choice":
            result.append({**base, "type": "choices", "value": {"choices": [answer]}})
        elif q.type == "multi_label":
            labels = list(answer)
            result.append({**base, "type": "choices", "value": {"choices": labels}})
            if q.intensity:
                for label, level in answer.items():
                    result.append({"from_name": intensity_control(q, q.labels.index(label)), "to_name": TEXT_OBJECT,
                                   "type": "number", "value": {"number": level}})
        elif q.type == "numeric":
            result.append({**base, "type": "number", "value": {"number": answer}})
        elif q.type == "text":
            result.append({**base, "type": "textarea", "value": {"text": [answer]}})
        elif q.type == "segments":
            for i, segment in enumerate(answer):
                result.append({
                    "id": f"{prefix}-{q.key}-{i}", "from_name": q.key, "to_name": AUDIO_OBJECT, "type": "labels",
                    "value": {"start": segment["start"], "end": segment["end"], "labels": [segment["label"]]},
                })
    return result


def label_studio_validate(config: str, tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Problems label-studio-sdk finds in the config and the tasks (empty when all are accepted)."""
    from label_studio_sdk.label_interface import LabelInterface

    interface = LabelInterface(config)
    problems: list[str] = []
    try:
        interface.validate()
    except Exception as exc:  # the SDK raises its own (Sentry-tagged) validation error types
        return [f"label config: {exc}"]
    for t, task in enumerate(tasks):
        data = task.get("data")
        if not isinstance(data, dict):
            problems.append(f"task {t}: 'data' must be an object")
            continue
        for obj in interface.objects:
            if obj.value_is_variable and data.get(obj.value_name) is None:
                problems.append(f"task {t}: data has no {obj.value_name!r}")
        for kind in ("annotations", "predictions"):
            for a, item in enumerate(task.get(kind, [])):
                errors = interface.validate_prediction(item, return_errors=True)
                problems.extend(f"task {t} {kind}[{a}]: {e}" for e in errors)
                if kind == "annotations" and not errors and not interface.validate_annotation(item):
                    problems.append(f"task {t} annotations[{a}]: rejected by validate_annotation")
    return problems
