"""Label Studio's labelling config and tasks in Sentio's terms. No Django here: plain data in, plain data out.

- ``label_config_map`` checks a config (defusedxml refuses DTDs and entities before label-studio-sdk's
  ``LabelInterface`` parses and validates it) and maps each control tag to a Sentio question; what does not map
  is listed by tag name with the reason (see the table in README.md).
- ``task_read`` turns one task of a Label Studio JSON export into a ``TaskDraft``: the utterance (text, audio
  reference, metadata), every annotation with its rater, time, lead time and skipped state, and every prediction
  with its model version. Answers are validated against the mapped questions; a bad annotation becomes a problem
  that names it and the control, and the rest of the task still reads.
- ``answers_result`` is the way back: Sentio answers as result regions of a given config (the ML backend).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # noqa: S405 - the types only; parsing goes through defusedxml
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from annotation.schema import INTENSITY_MAX, SchemaError, parse_questions, validate_answers

MAX_CONFIG_BYTES = 1024 * 1024
MAX_LABELS = 500
MAX_LABEL_LENGTH = 100
TAXONOMY_SEPARATOR = " / "
UNVERSIONED_MODEL = "label-studio:unversioned"
AUDIO_OBJECTS = ("audio", "audioplus")
TEXT_OBJECTS = ("text",)
_INTENSITY_NAME = re.compile(r"^(?P<base>.+)_intensity_(?P<index>\d+)$")


class LabelConfigError(ValueError):
    """A config Sentio cannot use at all (not XML, a DTD, rejected by label-studio-sdk, nothing that maps)."""


@dataclass(frozen=True)
class Unmapped:
    """A tag of the config that becomes no Sentio question, and why; its results are left out of the import."""

    tag: str
    name: str
    reason: str

    def describe(self) -> str:
        return f"<{self.tag} name={self.name!r}>: {self.reason}" if self.name else f"<{self.tag}>: {self.reason}"


@dataclass(frozen=True)
class Control:
    """A control tag that maps to a Sentio question (``kind`` says how its results read)."""

    name: str  # from_name in results
    tag: str
    kind: str  # choices, taxonomy, rating, number, textarea, segments, intensity
    key: str  # the Sentio question key (for intensity: the multi-label question it belongs to)
    to_name: str
    label_index: int = -1  # intensity: which label of the question


@dataclass(frozen=True)
class ConfigMapping:
    questions: list[dict[str, Any]]  # Sentio questions (schema JSON)
    controls: dict[str, Control]  # by Label Studio control name
    unmapped: list[Unmapped]
    text_var: str  # the task data key of the utterance text ("" when the config shows no text)
    audio_var: str  # ... of its audio
    open_numbers: tuple[str, ...] = ()  # Number controls without min/max: the range comes from the data
    config: str = field(default="", repr=False)

    @property
    def question_keys(self) -> list[str]:
        return [q["key"] for q in self.questions]

    def question(self, key: str) -> dict[str, Any]:
        by_key = self.__dict__.get("_by_key")
        if by_key is None:  # frozen dataclass: cache the index beside the fields
            by_key = {q["key"]: q for q in self.questions}
            object.__setattr__(self, "_by_key", by_key)
        return by_key[key]

    def lenient_questions(self) -> list[Any]:
        """The questions with nothing required: Label Studio lets annotators submit without a required answer."""
        return parse_questions([{**q, "required": False} for q in self.questions])


# --- the config --------------------------------------------------------------------------------------------------


def _question_key(name: str, taken: set[str]) -> str:
    key = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    key = re.sub(r"_+", "_", key)
    if not key or not key[0].isalpha():
        key = f"q_{key}".rstrip("_")
    key = key[:63]
    candidate, n = key, 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate, n = key[:63 - len(suffix)] + suffix, n + 1
    taken.add(candidate)
    return candidate


def _labels_problem(labels: Sequence[str]) -> str:
    if not labels:
        return "it has no choices or labels"
    if len(labels) > MAX_LABELS:
        return f"it has {len(labels)} choices; Sentio questions take at most {MAX_LABELS}"
    stripped = [label.strip() for label in labels]
    if any(not label or len(label) > MAX_LABEL_LENGTH for label in stripped):
        return f"a choice is empty or longer than {MAX_LABEL_LENGTH} characters"
    if len(set(stripped)) != len(stripped):
        return "two choices have the same value"
    return ""


def _taxonomy_paths(element: ET.Element, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for child in element:
        if child.tag != "Choice":
            paths += _taxonomy_paths(child, prefix)
            continue
        value = child.attrib.get("alias") or child.attrib.get("value")
        if value is None:
            continue
        path = (*prefix, value)
        paths.append(path)
        paths += _taxonomy_paths(child, path)
    return paths


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _safe_tree(config: str) -> ET.Element:
    if not isinstance(config, str) or not config.strip():
        raise LabelConfigError("the labelling config is empty")
    if len(config.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise LabelConfigError(f"the labelling config is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return safe_fromstring(config, forbid_dtd=True)
    except DefusedXmlException:
        raise LabelConfigError("the labelling config declares a DTD or entities; Label Studio configs need neither") from None
    except ET.ParseError as exc:
        raise LabelConfigError(f"the labelling config is not well-formed XML ({exc})") from None


def _titles(tree: ET.Element) -> dict[str, str]:
    """The Header shown just before each named tag (its question title)."""
    titles: dict[str, str] = {}
    header = ""
    for element in tree.iter():
        if element.tag == "Header":
            header = (element.attrib.get("value") or element.text or "").strip()
        elif element.attrib.get("toName") and element.attrib.get("name"):
            if header:
                titles[element.attrib["name"]] = header[:200]
            header = ""
    return titles


def label_config_map(config: str) -> ConfigMapping:
    """Map a Label Studio labelling config to Sentio questions; LabelConfigError if it cannot be used at all."""
    from label_studio_sdk.label_interface import LabelInterface

    tree = _safe_tree(config)
    try:
        interface = LabelInterface(config)
        interface.validate()
    except Exception as exc:  # the SDK raises its own (Sentry-tagged) error types
        raise LabelConfigError(f"label-studio-sdk rejects the labelling config: {exc}") from None
    elements = {e.attrib["name"]: e for e in tree.iter() if e.attrib.get("name")}
    titles = _titles(tree)
    objects = {obj.name: obj.tag.lower() for obj in interface.objects}
    text_var = audio_var = ""
    for obj in interface.objects:
        kind = obj.tag.lower()
        if not obj.value_is_variable:
            continue
        if kind in TEXT_OBJECTS and not text_var:
            text_var = obj.value_name
        elif kind in AUDIO_OBJECTS and not audio_var:
            audio_var = obj.value_name
    unmapped: list[Unmapped] = []
    for obj in interface.objects:
        kind = objects[obj.name]
        if kind not in (*TEXT_OBJECTS, *AUDIO_OBJECTS):
            unmapped.append(Unmapped(obj.tag, obj.name, "an utterance is text and audio; this object's task data "
                                                        "is kept in the utterance's metadata"))
        elif obj.value_name not in (text_var, audio_var):
            unmapped.append(Unmapped(obj.tag, obj.name, f"only the first {obj.tag} object becomes the utterance's "
                                                        f"{'audio' if kind in AUDIO_OBJECTS else 'text'}; this one's "
                                                        "task data is kept in its metadata"))
    taken: set[str] = set()
    questions: list[dict[str, Any]] = []
    controls: dict[str, Control] = {}
    open_numbers: list[str] = []
    multiple_choices: dict[str, tuple[int, Control]] = {}  # name -> (question index, control): intensities
    for control in interface.controls:
        name = control.name
        tag = control.tag
        lower = tag.lower()
        attrs = control.attr or {}
        to_name = (control.to_name or [""])[0]
        target = objects.get(to_name, "")
        required = str(attrs.get("required", "false")).lower() == "true"
        title = titles.get(name, name)[:200]

        def skip(reason: str, tag: str = tag, name: str = name) -> None:
            unmapped.append(Unmapped(tag, name, reason))

        if str(attrs.get("perRegion", "false")).lower() == "true":
            skip("it describes regions (perRegion); Sentio questions describe the whole utterance")
            continue
        if lower == "choices":
            labels = [str(label) for label in control.labels or []]
            if str(attrs.get("value", "")).startswith("$"):
                skip("it takes its choices from the task data; Sentio questions have fixed labels")
                continue
            problem = _labels_problem(labels)
            if problem:
                skip(problem)
                continue
            multiple = attrs.get("choice") == "multiple"
            key = _question_key(name, taken)
            questions.append({"key": key, "type": "multi_label" if multiple else "single_choice", "title": title,
                              "labels": [label.strip() for label in labels], "required": required})
            controls[name] = Control(name, tag, "choices", key, to_name)
            if multiple:
                multiple_choices[name] = (len(questions) - 1, controls[name])
        elif lower == "taxonomy":
            element = elements.get(name)
            paths = _taxonomy_paths(element) if element is not None else []
            labels = [TAXONOMY_SEPARATOR.join(path) for path in paths]
            problem = _labels_problem(labels)
            if problem:
                skip(f"{problem} (a node is its path, e.g. 'Emotion / Joy')")
                continue
            single = str(attrs.get("maxUsages", "")) == "1"
            key = _question_key(name, taken)
            questions.append({"key": key, "type": "single_choice" if single else "multi_label", "title": title,
                              "labels": labels, "required": required})
            controls[name] = Control(name, tag, "taxonomy", key, to_name)
        elif lower == "rating":
            top = _number(attrs.get("maxRating", 5))
            if top is None or top < 2 or not float(top).is_integer():
                skip("its maxRating is not a whole number of at least 2")
                continue
            key = _question_key(name, taken)
            questions.append({"key": key, "type": "numeric", "title": title, "min": 1, "max": int(top), "step": 1,
                              "required": required})
            controls[name] = Control(name, tag, "rating", key, to_name)
        elif lower == "number":
            match = _INTENSITY_NAME.match(name)
            base = multiple_choices.get(match["base"]) if match else None
            if match and base is not None and int(match["index"]) < len(questions[base[0]]["labels"]):
                # Sentio's own export writes a multi-label question's intensities as Number controls
                # <key>_intensity_<i> after its Choices.
                questions[base[0]]["intensity"] = True
                controls[name] = Control(name, tag, "intensity", base[1].key, to_name, int(match["index"]))
                continue
            low, high, step = _number(attrs.get("min")), _number(attrs.get("max")), _number(attrs.get("step"))
            if low is not None and high is not None and low >= high:
                skip(f"its min {low:g} is not below its max {high:g}")
                continue
            key = _question_key(name, taken)
            question: dict[str, Any] = {"key": key, "type": "numeric", "title": title, "required": required}
            if low is None or high is None:
                open_numbers.append(name)  # the range comes from the answers (number_ranges_apply)
            else:
                question.update(min=low, max=high)
                if step is not None and 0 < step <= high - low:
                    question["step"] = step
            questions.append(question)
            controls[name] = Control(name, tag, "number", key, to_name)
        elif lower == "textarea":
            key = _question_key(name, taken)
            questions.append({"key": key, "type": "text", "title": title, "required": required})
            controls[name] = Control(name, tag, "textarea", key, to_name)
        elif lower == "labels":
            if target not in AUDIO_OBJECTS:
                skip("labels on text spans have no Sentio question type (only labels on audio regions become "
                     "time segments)")
                continue
            labels = [str(label) for label in control.labels or []]
            problem = _labels_problem(labels)
            if problem:
                skip(problem)
                continue
            key = _question_key(name, taken)
            questions.append({"key": key, "type": "segments", "title": title,
                              "labels": [label.strip() for label in labels], "required": required})
            controls[name] = Control(name, tag, "segments", key, to_name)
        else:
            skip("no Sentio question type matches this control")
    # A multi-label question with intensity numbers for only some of its labels keeps none of them.
    for question in questions:
        if question.get("intensity"):
            levels = {c.label_index for c in controls.values() if c.kind == "intensity" and c.key == question["key"]}
            if len(levels) != len(question["labels"]):
                question.pop("intensity")
                for control_name in [n for n, c in controls.items() if c.kind == "intensity" and c.key == question["key"]]:
                    del controls[control_name]
                    unmapped.append(Unmapped("Number", control_name, "an intensity for only some labels of "
                                                                     f"{question['key']!r}; Sentio rates all or none"))
    if not controls:
        listed = "; ".join(u.describe() for u in unmapped) or "the config has no control tags"
        raise LabelConfigError(f"nothing in the labelling config maps to a Sentio question ({listed})")
    if not text_var and not audio_var:
        raise LabelConfigError("the labelling config shows neither a Text nor an Audio object: Sentio utterances are "
                               "text, speech or both")
    mapping = ConfigMapping(questions=questions, controls=controls, unmapped=unmapped, text_var=text_var,
                            audio_var=audio_var, open_numbers=tuple(open_numbers), config=config)
    if not open_numbers:
        _check_questions(mapping)
    return mapping


def _check_questions(mapping: ConfigMapping) -> None:
    try:
        parse_questions(mapping.questions)
    except SchemaError as exc:  # every rule above keeps them valid; a failure here is a bug worth a clear message
        raise LabelConfigError(f"the mapped questions are not a valid Sentio schema: {exc}") from None


def number_ranges_apply(mapping: ConfigMapping, seen: Mapping[str, tuple[float, float]]) -> ConfigMapping:
    """Close the range of Number controls without min/max from the values the tasks hold (``number_values``);
    one with no value at all becomes unmapped."""
    if not mapping.open_numbers:
        return mapping
    questions = [dict(q) for q in mapping.questions]
    controls = dict(mapping.controls)
    unmapped = list(mapping.unmapped)
    for name in mapping.open_numbers:
        key = controls[name].key
        if name not in seen:
            questions = [q for q in questions if q["key"] != key]
            del controls[name]
            unmapped.append(Unmapped("Number", name, "it has no min and max, and no task answers it, so its range "
                                                     "is unknown"))
            continue
        low, high = seen[name]
        for question in questions:
            if question["key"] == key:
                question.update(min=math.floor(low), max=max(math.ceil(high), math.floor(low) + 1))
    if not controls:
        raise LabelConfigError("nothing in the labelling config maps to a Sentio question")
    closed = replace(mapping, questions=questions, controls=controls, unmapped=unmapped, open_numbers=())
    _check_questions(closed)
    return closed


def number_values(task: Any, names: Iterable[str], seen: dict[str, tuple[float, float]]) -> None:
    """Widen ``seen`` (control name -> (min, max)) with the numbers a task's annotations and predictions give."""
    wanted = set(names)
    if not isinstance(task, dict):
        return
    for kind in ("annotations", "predictions"):
        for item in task.get(kind) or []:
            for region in (item.get("result") or []) if isinstance(item, dict) else []:
                if not isinstance(region, dict) or region.get("from_name") not in wanted:
                    continue
                value = (region.get("value") or {}).get("number") if isinstance(region.get("value"), dict) else None
                number = _number(value) if not isinstance(value, bool) else None
                if number is not None:
                    low, high = seen.get(region["from_name"], (number, number))
                    seen[region["from_name"]] = (min(low, number), max(high, number))


# --- tasks -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    where: str  # e.g. "annotations[2].emotion"
    reason: str


@dataclass
class AnnotationDraft:
    external_id: str
    rater: str
    rater_email: str
    created_at: datetime | None
    updated_at: datetime | None
    lead_time_ms: int | None
    cancelled: bool
    answers: dict[str, Any]


@dataclass
class PredictionDraft:
    external_id: str
    model_version: str
    score: float | None
    answers: dict[str, Any]
    created_at: datetime | None


@dataclass
class TaskDraft:
    task_id: int | None
    external_id: str
    text: str
    audio: str  # as the task gives it: a URL or a Label Studio path; resolved by the service
    language: str
    conversation: str
    speaker: str
    metadata: dict[str, Any]
    annotations: list[AnnotationDraft]
    predictions: list[PredictionDraft]
    problems: list[Problem]
    dropped_regions: int = 0  # results of unmapped controls
    predictions_as_ids: int = 0


def _datetime(raw: Any) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not an ISO 8601 time")
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO 8601 time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _rater(annotation: Mapping[str, Any], task_id: int | None, index: int) -> tuple[str, str]:
    """(rater key, email if the export names one): the Label Studio user id, else a name the source gives."""
    completed_by = annotation.get("completed_by")
    email = ""
    if isinstance(completed_by, dict):
        email = str(completed_by.get("email") or "")[:200]
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return f"ls:{completed_by}", email
    if isinstance(completed_by, str) and completed_by.strip().isdigit():
        return f"ls:{int(completed_by)}", email
    named = annotation.get("created_username")
    if isinstance(named, str) and named.strip():
        return named.strip()[:200], email
    # Unknown author: a rater of its own, so two anonymous annotations never count as one person's.
    return f"ls:anonymous-{task_id if task_id is not None else 'task'}-{index}", email


def _external_id(raw: Any) -> str:
    if isinstance(raw, bool) or raw is None:
        return ""
    if isinstance(raw, (int, str)):
        return str(raw).strip()[:200]
    return ""


def _task_id(task: dict[str, Any]) -> int | None:
    raw_id = task.get("id")
    return raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None


def task_external_id(task: dict[str, Any], data: dict[str, Any]) -> str:
    """The utterance id a task is imported under (and found by later): a Sentio export's own ``external_id``, else
    ``ls-task-<task id>``; "" when it has neither."""
    task_id = _task_id(task)
    return _external_id(data.get("external_id")) or (f"ls-task-{task_id}" if task_id is not None else "")


def result_answers(mapping: ConfigMapping, result: Any, where: str) -> tuple[dict[str, Any], list[Problem], int]:
    """Sentio answers from one annotation's (or prediction's) result regions: (answers, problems, dropped regions).

    Regions of unmapped controls are dropped (and counted); regions that do not fit their control are problems.
    """
    if not isinstance(result, list):
        return {}, [Problem(f"{where}.result", "must be a list of regions")], 0
    answers: dict[str, Any] = {}
    problems: list[Problem] = []
    intensities: dict[str, dict[int, Any]] = {}
    dropped = 0
    for index, region in enumerate(result):
        if not isinstance(region, dict):
            problems.append(Problem(f"{where}.result[{index}]", "must be an object"))
            continue
        name = region.get("from_name")
        control = mapping.controls.get(name) if isinstance(name, str) else None
        if control is None:
            if region.get("type") != "relation":
                dropped += 1
            continue
        value = region.get("value")
        here = f"{where}.{name}"
        if not isinstance(value, dict):
            problems.append(Problem(here, "the region has no value object"))
            continue
        kind = control.kind
        try:
            if kind == "choices":
                choices = value.get("choices")
                if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                    raise ValueError("value.choices must be a list of strings")
                if mapping.question(control.key)["type"] == "single_choice":
                    if len(choices) > 1:
                        raise ValueError(f"a single choice holds {len(choices)} choices: {choices}")
                    if choices:
                        answers[control.key] = choices[0]
                else:
                    answers[control.key] = list(choices)
            elif kind == "taxonomy":
                paths = value.get("taxonomy")
                if not isinstance(paths, list) or not all(isinstance(p, list) and all(isinstance(s, str) for s in p)
                                                          for p in paths):
                    raise ValueError("value.taxonomy must be a list of paths (lists of strings)")
                labels = [TAXONOMY_SEPARATOR.join(path) for path in paths if path]
                if mapping.question(control.key)["type"] == "single_choice":
                    if len(labels) > 1:
                        raise ValueError(f"the taxonomy allows one choice but holds {len(labels)}")
                    if labels:
                        answers[control.key] = labels[0]
                else:
                    answers[control.key] = list(dict.fromkeys(labels))
            elif kind == "rating":
                rating = value.get("rating")
                if isinstance(rating, bool) or not isinstance(rating, (int, float)):
                    raise ValueError(f"value.rating must be a number, got {rating!r}")
                if rating != 0:  # Label Studio's 0 stars is no rating
                    answers[control.key] = rating
            elif kind in ("number", "intensity"):
                number = value.get("number")
                if isinstance(number, bool) or not isinstance(number, (int, float)):
                    raise ValueError(f"value.number must be a number, got {number!r}")
                if kind == "number":
                    answers[control.key] = number
                else:
                    intensities.setdefault(control.key, {})[control.label_index] = number
            elif kind == "textarea":
                texts = value.get("text")
                if isinstance(texts, str):
                    texts = [texts]
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    raise ValueError("value.text must be a list of strings")
                joined = "\n".join(texts)
                if joined:
                    answers[control.key] = joined
            elif kind == "segments":
                chosen_labels = value.get("labels")
                start, end = value.get("start"), value.get("end")
                if not isinstance(chosen_labels, list) or not all(isinstance(label, str) for label in chosen_labels):
                    raise ValueError("value.labels must be a list of strings")
                segments = answers.setdefault(control.key, [])
                segments.extend({"start": start, "end": end, "label": label} for label in chosen_labels)
        except ValueError as exc:
            problems.append(Problem(here, str(exc)))
    for key, levels in intensities.items():
        chosen = answers.get(key)
        labels = mapping.question(key)["labels"]
        chosen_labels = chosen if isinstance(chosen, list) else []
        problem = next((f"intensity {level!r} of {labels[i]!r} is not a whole number from 0 to {INTENSITY_MAX}"
                        for i, level in levels.items()
                        if not (float(level).is_integer() and 0 <= level <= INTENSITY_MAX)), "")
        if problem:
            problems.append(Problem(f"{where}.{key}", problem))
            continue
        merged = {label: 1 for label in chosen_labels}
        merged.update({labels[i]: int(level) for i, level in levels.items() if int(level) > 0 or labels[i] in merged})
        answers[key] = merged
    return answers, problems, dropped


def _validated(questions: list[Any], answers: dict[str, Any], where: str,
               problems: list[Problem]) -> dict[str, Any] | None:
    """Answers normalised by Sentio's schema rules, or None (with the problems) when one does not fit."""
    if not answers:
        return {}
    try:
        return validate_answers(questions, answers)
    except SchemaError as exc:
        problems.extend(Problem(f"{where}.{key}", reason) for key, reason in exc.errors.items())
        return None


def task_read(mapping: ConfigMapping, task: Any, *, questions: list[Any] | None = None) -> TaskDraft:
    """One task of a Label Studio JSON export in Sentio's terms; its problems name the annotation and control.

    ``questions`` are ``mapping.lenient_questions()`` (parsed once by a caller reading many tasks).
    """
    questions = questions if questions is not None else mapping.lenient_questions()
    problems: list[Problem] = []
    if not isinstance(task, dict):
        return TaskDraft(None, "", "", "", "", "", "", {}, [], [], [Problem("task", "must be a JSON object")])
    task_id = _task_id(task)
    data = task.get("data")
    if not isinstance(data, dict):
        return TaskDraft(task_id, "", "", "", "", "", "", {}, [], [], [Problem("data", "must be a JSON object")])
    text_value = data.get(mapping.text_var) if mapping.text_var else None
    text = "" if text_value is None else text_value if isinstance(text_value, str) else str(text_value)
    audio_value = data.get(mapping.audio_var) if mapping.audio_var else None
    audio = audio_value.strip() if isinstance(audio_value, str) else ""
    if audio_value not in (None, "") and not isinstance(audio_value, str):
        problems.append(Problem(f"data.{mapping.audio_var}", "the audio must be a URL or a path"))
    if not text.strip() and not audio:
        wanted = " or ".join(repr(v) for v in (mapping.text_var, mapping.audio_var) if v)
        problems.append(Problem("data", f"the task has no text and no audio (data key {wanted})"))
    # A task exported by Sentio carries the utterance's own ids; a Label Studio task is known by its task id.
    external_id = task_external_id(task, data)
    raw_language = data.get("language")
    language = raw_language if isinstance(raw_language, str) else ""
    conversation = _external_id(data.get("conversation"))
    speaker = _external_id(data.get("speaker"))
    used = {mapping.text_var, mapping.audio_var, "external_id", "language", "conversation", "speaker"}
    metadata: dict[str, Any] = {"label_studio": {k: v for k, v in (("task_id", task_id), ("meta", task.get("meta")))
                                                 if v not in (None, {}, "")}}
    extra = {k: v for k, v in data.items() if k not in used}
    if extra:
        metadata["label_studio"]["data"] = extra
    draft = TaskDraft(task_id, external_id, text, audio, language, conversation, speaker, metadata, [], [], problems)
    for index, annotation in enumerate(task.get("annotations") or []):
        where = f"annotations[{index}]"
        if not isinstance(annotation, dict):
            problems.append(Problem(where, "must be an object"))
            continue
        try:
            created_at = _datetime(annotation.get("created_at"))
            updated_at = _datetime(annotation.get("updated_at")) or created_at
        except ValueError as exc:
            problems.append(Problem(f"{where}.created_at", str(exc)))
            continue
        lead_time = annotation.get("lead_time")
        lead_time_ms = None
        if lead_time is not None:
            seconds = _number(lead_time) if not isinstance(lead_time, bool) else None
            if seconds is None or seconds < 0:
                problems.append(Problem(f"{where}.lead_time", f"must be seconds (a number ≥ 0), got {lead_time!r}"))
                continue
            lead_time_ms = min(int(round(seconds * 1000)), 2**31 - 1)
        answers, found, dropped = result_answers(mapping, annotation.get("result") or [], where)
        draft.dropped_regions += dropped
        cleaned = None if found else _validated(questions, answers, where, found)
        if cleaned is None:
            problems.extend(found)
            continue
        external = _external_id(annotation.get("id"))
        rater, email = _rater(annotation, task_id, index)
        draft.annotations.append(AnnotationDraft(
            external_id=external, rater=rater, rater_email=email, created_at=created_at, updated_at=updated_at,
            lead_time_ms=lead_time_ms, cancelled=bool(annotation.get("was_cancelled")), answers=cleaned))
    for index, prediction in enumerate(task.get("predictions") or []):
        where = f"predictions[{index}]"
        if isinstance(prediction, int) and not isinstance(prediction, bool):
            draft.predictions_as_ids += 1  # an export made without its predictions' contents
            continue
        if not isinstance(prediction, dict):
            problems.append(Problem(where, "must be an object"))
            continue
        score = prediction.get("score")
        score_value = _number(score) if score is not None and not isinstance(score, bool) else None
        if score is not None and (score_value is None or not 0 <= score_value <= 1):
            problems.append(Problem(f"{where}.score", f"must be a number from 0 to 1, got {score!r}"))
            continue
        answers, found, dropped = result_answers(mapping, prediction.get("result") or [], where)
        draft.dropped_regions += dropped
        cleaned = None if found else _validated(questions, answers, where, found)
        if cleaned is None:
            problems.extend(found)
            continue
        if not cleaned:
            continue  # nothing Sentio can use
        version = prediction.get("model_version")
        try:
            created_at = _datetime(prediction.get("created_at"))
        except ValueError:
            created_at = None
        draft.predictions.append(PredictionDraft(
            external_id=_external_id(prediction.get("id")),
            model_version=str(version).strip()[:200] if isinstance(version, (str, int)) and str(version).strip()
            else UNVERSIONED_MODEL, score=score_value, answers=cleaned, created_at=created_at))
    return draft


# --- the way back: Sentio answers as Label Studio results --------------------------------------------------------


def answers_result(mapping: ConfigMapping, answers: Mapping[str, Any], *, region_prefix: str = "sentio") -> list[dict[str, Any]]:
    """Result regions of ``mapping``'s config for Sentio answers keyed by question key; answers whose question the
    config does not have, or labels it does not offer, are left out."""
    by_key: dict[str, list[Control]] = {}
    for control in mapping.controls.values():
        by_key.setdefault(control.key, []).append(control)
    questions = {q["key"]: q for q in mapping.questions}
    result: list[dict[str, Any]] = []
    for key, answer in answers.items():
        question = questions.get(key)
        if question is None or answer in (None, "", [], {}):
            continue
        for control in by_key.get(key, []):
            base = {"from_name": control.name, "to_name": control.to_name, "type": control.tag.lower()}
            labels = question.get("labels", [])
            if control.kind in ("choices", "taxonomy"):
                chosen = [answer] if isinstance(answer, str) else list(answer)
                chosen = [label for label in chosen if label in labels]
                if not chosen:
                    continue
                if control.kind == "choices":
                    result.append({**base, "value": {"choices": chosen}})
                else:
                    result.append({**base, "value": {"taxonomy": [label.split(TAXONOMY_SEPARATOR) for label in chosen]}})
            elif control.kind == "intensity" and isinstance(answer, dict):
                label = labels[control.label_index]
                if label in answer:
                    result.append({**base, "value": {"number": answer[label]}})
            elif control.kind == "rating" and isinstance(answer, (int, float)):
                result.append({**base, "value": {"rating": int(round(answer))}})
            elif control.kind == "number" and isinstance(answer, (int, float)):
                result.append({**base, "value": {"number": answer}})
            elif control.kind == "textarea" and isinstance(answer, str):
                result.append({**base, "value": {"text": [answer]}})
            elif control.kind == "segments" and isinstance(answer, list):
                for i, segment in enumerate(answer):
                    if segment.get("label") in labels:
                        result.append({**base, "id": f"{region_prefix}-{key}-{i}", "value": {
                            "start": segment["start"], "end": segment["end"], "labels": [segment["label"]]}})
    return result
