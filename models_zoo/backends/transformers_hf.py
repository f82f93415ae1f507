"""Hugging Face transformers models from a local folder (safetensors only): text and audio classification,
and wav2vec2-style arousal/valence/dominance regression (audEERING's layout).

Batches are built by length and bounded by a token or audio-seconds budget; on CUDA the model runs in
half precision and a batch that runs out of memory is split in two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from models_zoo.audio import TARGET_SAMPLE_RATE, AudioClip
from models_zoo.backends.base import Backend, InT, OutT
from models_zoo.batching import length_sorted_batches
from models_zoo.cards import Availability, ModelCard, Task
from models_zoo.device import DeviceChoice, torch_device
from models_zoo.errors import InputError, PermanentModelError
from models_zoo.outputs import Dimensions, LabelScores

T = TypeVar("T")


def _check_transformers_folder(path: Path) -> Availability:
    if not path.is_dir() or not (path / "config.json").is_file():
        return Availability(False, f"{path} is not a transformers model folder (no config.json)")
    if not any(path.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in path.glob("*.bin"))) or "none"
        return Availability(False, f"{path} has no .safetensors weights (found: {found}); Sentio loads only "
                                   "safetensors: convert the checkpoint once with a trusted tool")
    return Availability(True)


class _TorchBackend(Backend[InT, OutT]):
    requires: ClassVar = ("torch", "transformers", "safetensors")
    _model: Any
    _extractor: Any
    device: str = "cpu"
    half_precision: bool = False
    _choice: DeviceChoice = DeviceChoice("cpu", False)
    _cpu_batch_items: ClassVar[int] = 64

    @classmethod
    def check_files(cls, path: Path, card: ModelCard) -> Availability:
        return _check_transformers_folder(path)

    def _prepare(self, model: Any) -> Any:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        choice = torch_device()
        self._choice = choice
        self.device = choice.device
        model = model.to(choice.device)
        if choice.half_precision:
            model = model.half()
        self.half_precision = choice.half_precision
        return model.eval()

    def _labels(self, config: Any) -> tuple[str, ...]:
        id2label = getattr(config, "id2label", None) or {}
        labels = tuple(str(id2label[i]) for i in sorted(int(k) for k in id2label))
        if self.card.labels and tuple(self.card.labels) != labels:
            raise PermanentModelError(f"model {self.card.id!r}: card labels {list(self.card.labels)} differ from the "
                             f"model's {list(labels)}")
        return labels

    def _run_batches(self, lengths: Sequence[int], budget: float, max_items: int,
                     run: Callable[[list[int]], list[T]]) -> list[T]:
        """Run ``run`` over length-sorted batches, splitting a batch that runs out of GPU memory."""
        import torch

        results: dict[int, T] = {}

        def attempt(indices: list[int]) -> None:
            try:
                with torch.inference_mode():
                    outputs = run(indices)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if len(indices) == 1:
                    raise InputError("too long for this device's memory", item=f"batch item {indices[0]}") from None
                middle = len(indices) // 2
                attempt(indices[:middle])
                attempt(indices[middle:])
                return
            results.update(zip(indices, outputs))

        for batch in length_sorted_batches(lengths, max_batch_cost=budget, max_batch_items=max_items):
            attempt(batch)
        return [results[i] for i in range(len(lengths))]

    def _batch_budget(self, key: str, cpu_default: int, gpu_default: int) -> float:
        """A card option, else a budget from the device (a GPU's grows with its memory)."""
        if key in self.card.options:
            return float(self.card.options[key])
        return float(self._choice.batch_items(cpu=cpu_default, gpu=gpu_default, cap=8 * gpu_default))

    @property
    def batch_items(self) -> int:
        self.load()
        return int(self.card.options.get("max_batch_items")
                   or self._choice.batch_items(cpu=self._cpu_batch_items, gpu=2 * self._cpu_batch_items, cap=1024))


class TransformersTextClassifier(_TorchBackend[str, LabelScores]):
    """``AutoModelForSequenceClassification``; softmax, or sigmoids when the config says multi-label."""

    tasks: ClassVar = frozenset({Task.TEXT_EMOTION})
    _tokenizer: Any

    def _load(self, path: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True,
                                                                   use_safetensors=True)
        self._model = self._prepare(model)
        self.labels = self._labels(model.config)
        self.multi_label = model.config.problem_type == "multi_label_classification"
        self._max_length = int(self.card.options.get("max_length", min(self._tokenizer.model_max_length, 512)))

    def _predict(self, items: Sequence[str]) -> list[LabelScores]:
        import torch

        encoded = self._tokenizer(list(items), truncation=True, max_length=self._max_length)
        lengths = [len(ids) for ids in encoded["input_ids"]]

        def run(indices: list[int]) -> list[LabelScores]:
            batch = self._tokenizer.pad({"input_ids": [encoded["input_ids"][i] for i in indices],
                                         "attention_mask": [encoded["attention_mask"][i] for i in indices]},
                                        return_tensors="pt")
            logits = self._model(**{k: v.to(self.device) for k, v in batch.items()}).logits.float()
            probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
            return [LabelScores.from_probabilities(self.labels, row, multi_label=self.multi_label)
                    for row in probs.cpu().numpy()]

        return self._run_batches(lengths, self._batch_budget("max_batch_tokens", 8192, 65536), self.batch_items, run)


class _AudioTorchBackend(_TorchBackend[AudioClip, OutT]):
    _cpu_batch_items: ClassVar[int] = 32

    def _audio_inputs(self, clips: list[AudioClip]) -> dict[str, Any]:
        inputs = self._extractor([c.samples for c in clips], sampling_rate=TARGET_SAMPLE_RATE, padding=True,
                                 return_tensors="pt", return_attention_mask=True)
        out = {}
        for key, value in inputs.items():
            value = value.to(self.device)
            if self.half_precision and value.is_floating_point():
                value = value.half()
            out[key] = value
        return out

    def _audio_batches(self, items: Sequence[AudioClip], run: Callable[[list[int]], list[T]]) -> list[T]:
        lengths = [len(c.samples) for c in items]
        seconds = self._batch_budget("max_batch_seconds", 60, 600)
        return self._run_batches(lengths, seconds * TARGET_SAMPLE_RATE, self.batch_items, run)


class TransformersAudioClassifier(_AudioTorchBackend[LabelScores]):
    """``AutoModelForAudioClassification`` (wav2vec2, HuBERT, WavLM ... with a classification head)."""

    tasks: ClassVar = frozenset({Task.SPEECH_EMOTION_CATEGORICAL})

    def _load(self, path: Path) -> None:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self._extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForAudioClassification.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
        self._model = self._prepare(model)
        self.labels = self._labels(model.config)

    def _predict(self, items: Sequence[AudioClip]) -> list[LabelScores]:
        import torch

        def run(indices: list[int]) -> list[LabelScores]:
            logits = self._model(**self._audio_inputs([items[i] for i in indices])).logits.float()
            return [LabelScores.from_probabilities(self.labels, row)
                    for row in torch.softmax(logits, dim=-1).cpu().numpy()]

        return self._audio_batches(items, run)


def dimensional_model_class() -> Any:
    """wav2vec2 + mean pooling + regression head, with the parameter names of audEERING's A/V/D models."""
    import torch
    from torch import nn
    from transformers import Wav2Vec2Model, Wav2Vec2PreTrainedModel

    class RegressionHead(nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.dense = nn.Linear(config.hidden_size, config.hidden_size)
            self.dropout = nn.Dropout(config.final_dropout)
            self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

        def forward(self, features: Any) -> Any:
            return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(features)))))

    class Wav2Vec2ForDimensionalRegression(Wav2Vec2PreTrainedModel):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.wav2vec2 = Wav2Vec2Model(config)
            self.classifier = RegressionHead(config)
            self.post_init()

        def forward(self, input_values: Any, attention_mask: Any = None) -> Any:
            hidden = self.wav2vec2(input_values, attention_mask=attention_mask).last_hidden_state
            if attention_mask is None:
                pooled = hidden.mean(dim=1)
            else:
                # Average only over frames that hold audio, so padding does not change a clip's values.
                frames = self._get_feature_vector_attention_mask(hidden.shape[1], attention_mask)
                weights = frames.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
            return self.classifier(pooled)

    return Wav2Vec2ForDimensionalRegression


class Wav2Vec2DimensionalRegressor(_AudioTorchBackend[Dimensions]):
    """Arousal/valence/dominance from a wav2vec2 regression model (e.g. audEERING's MSP-Podcast models)."""

    tasks: ClassVar = frozenset({Task.SPEECH_EMOTION_DIMENSIONAL})

    def _load(self, path: Path) -> None:
        from transformers import AutoFeatureExtractor

        self._extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        model = dimensional_model_class().from_pretrained(str(path), local_files_only=True, use_safetensors=True)
        self._model = self._prepare(model)
        self.labels = self._labels(model.config)

    def _predict(self, items: Sequence[AudioClip]) -> list[Dimensions]:
        def run(indices: list[int]) -> list[Dimensions]:
            values = self._model(**self._audio_inputs([items[i] for i in indices])).float().cpu().numpy()
            return [Dimensions({label: float(v) for label, v in zip(self.labels, row)}) for row in np.atleast_2d(values)]

        return self._audio_batches(items, run)
