"""The zoo's batched, half-precision GPU path against bare Hugging Face loops, on the models' real shapes.

Runs with no database and no worker (a GPU machine here has neither): only models_zoo, torch and transformers.
The weights are randomly initialised from the production models' configurations (BERT-base text classifier,
a MiniLM-sized sentence-transformers embedder, a wav2vec2-base A/V/D regressor), so no weights are downloaded;
speed does not depend on the values of the weights.

    PYTHONPATH=. python benchmarks/gpu_zoo_bench.py --texts 20000 --clips 1024 --runs 3

For each model the same inputs go through

- ``bare_one``: the Hugging Face model called on one input at a time, float32 (a naive caller);
- ``bare_batch32``: batches of 32 in input order, float32 (the usual tutorial loop);
- ``zoo``: the models_zoo backend (length-sorted batches sized from the device's memory, float16 on CUDA,
  a batch that runs out of memory split in two).

Prints texts/s and clips/s (medians of ``--runs``) and zoo/bare ratios, with the batch sizes the device chose.

On this workplace's H200 machine (Python 3.12 with torch, transformers and sentence-transformers, nothing
fetchable) only soundfile and its needs must travel: in the checkout the device tool sends, run
``pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform
manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl soundfile==0.13.1 cffi pycparser``, then on the
machine ``pip install --no-index --no-deps --target /tmp/site .gpu/whl/*.whl`` and run this script with
``PYTHONPATH=/tmp/site:.``. Whisper is not measured there: CTranslate2's wheel and the packaged weights exceed
what a device call may carry.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _words(n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(letters[(i * 7 + k * 3) % 26] for k in range(3 + i % 6)) for i in range(n)]


def build_models(folder: Path, *, small: bool) -> dict[str, Path]:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        BertTokenizerFast,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
    )

    from models_zoo.backends.transformers_hf import dimensional_model_class

    torch.manual_seed(0)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_words(5000)]))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    labels = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if small else {}
    text = folder / "text"
    BertForSequenceClassification(BertConfig(vocab_size=5005, id2label=dict(enumerate(labels)),
                                             label2id={v: i for i, v in enumerate(labels)}, **size)
                                  ).save_pretrained(text, safe_serialization=True)
    tokenizer.save_pretrained(text)
    encoder = folder / "minilm-encoder"
    mini = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    BertModel(BertConfig(vocab_size=5005, **(size if small else mini))).save_pretrained(encoder, safe_serialization=True)
    tokenizer.save_pretrained(encoder)
    transformer = st_models.Transformer(str(encoder))
    embedder = folder / "embedder"
    SentenceTransformer(modules=[transformer, st_models.Pooling(transformer.get_word_embedding_dimension())]
                        ).save(str(embedder), safe_serialization=True)
    speech = folder / "speech"
    wav_size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                    conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8)) if small else {}
    config = Wav2Vec2Config(num_labels=3, id2label={0: "arousal", 1: "dominance", 2: "valence"},
                            label2id={"arousal": 0, "dominance": 1, "valence": 2}, do_stable_layer_norm=True,
                            feat_extract_norm="layer", **wav_size)
    dimensional_model_class()(config).save_pretrained(speech, safe_serialization=True)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(speech)
    return {"text": text, "embedder": embedder, "speech": speech}


def timed(runs: int, work: Callable[[], Any]) -> list[float]:
    import torch

    seconds = []
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        work()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--bare-one", type=int, default=500, help="inputs timed one at a time (then scaled)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny models (a CPU smoke run)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification, AutoTokenizer

    from models_zoo.audio import TARGET_SAMPLE_RATE, AudioClip
    from models_zoo.backends.embeddings import SentenceTransformerBackend
    from models_zoo.backends.transformers_hf import (
        TransformersTextClassifier,
        Wav2Vec2DimensionalRegressor,
        dimensional_model_class,
    )
    from models_zoo.cards import ModelCard, ModelSource, SourceKind, Task
    from models_zoo.device import torch_device

    device = torch_device()
    rng = np.random.default_rng(0)
    words = _words(5000)
    texts = [" ".join(rng.choice(words, int(n))) for n in rng.integers(5, 60, args.texts)]
    clips = [AudioClip((rng.normal(0, 0.1, int(TARGET_SAMPLE_RATE * s))).astype(np.float32), f"clip-{i}")
             for i, s in enumerate(rng.uniform(2.0, 8.0, args.clips))]
    report: dict[str, Any] = {"device": device.device, "gpu_memory_gib": round(device.memory_gib, 1),
                              "torch": torch.__version__, "runs": args.runs, "small": args.small,
                              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}

    def card(card_id: str, task: Task, backend: str, path: Path) -> ModelCard:
        return ModelCard(id=card_id, task=task, backend=backend, source=ModelSource(SourceKind.LOCAL_PATH, str(path)),
                         license="test")

    with tempfile.TemporaryDirectory() as folder:
        paths = build_models(Path(folder), small=args.small)
        dev = device.device

        # --- text classification -------------------------------------------------------------------------------
        tokenizer = AutoTokenizer.from_pretrained(str(paths["text"]))
        bare = AutoModelForSequenceClassification.from_pretrained(str(paths["text"])).to(dev).eval()

        def bare_text(batch: int, items: list[str]) -> None:
            with torch.inference_mode():
                for start in range(0, len(items), batch):
                    encoded = tokenizer(items[start:start + batch], padding=True, truncation=True, max_length=512,
                                        return_tensors="pt").to(dev)
                    torch.softmax(bare(**encoded).logits, dim=-1).cpu()

        zoo = TransformersTextClassifier(card("bench-text", Task.TEXT_EMOTION, "transformers_text", paths["text"]))
        zoo.load()
        zoo.predict_batch(texts[:64])
        one = min(args.bare_one, len(texts))
        seconds = {"bare_one": [s * len(texts) / one for s in timed(args.runs, lambda: bare_text(1, texts[:one]))],
                   "bare_batch32": timed(args.runs, lambda: bare_text(32, texts)),
                   "zoo": timed(args.runs, lambda: zoo.predict_batch(texts))}
        report["text_classifier"] = _summary(seconds, len(texts), "texts", {"batch_items": zoo.batch_items,
                                                                             "half_precision": zoo.half_precision})

        # --- sentence embeddings -------------------------------------------------------------------------------
        plain = SentenceTransformer(str(paths["embedder"]), device=dev)
        embedder = SentenceTransformerBackend(card("bench-embedder", Task.EMBEDDING, "sentence_transformers",
                                                   paths["embedder"]))
        embedder.load()
        embedder.embed(texts[:64])
        seconds = {"bare_one": [s * len(texts) / one for s in timed(
                       args.runs, lambda: [plain.encode([t], show_progress_bar=False) for t in texts[:one]])],
                   "bare_batch32": timed(args.runs, lambda: plain.encode(texts, batch_size=32, show_progress_bar=False)),
                   "zoo": timed(args.runs, lambda: embedder.embed(texts))}
        report["embedder"] = _summary(seconds, len(texts), "texts", {"batch_items": embedder.batch_items})

        # --- speech A/V/D regression ---------------------------------------------------------------------------
        extractor = AutoFeatureExtractor.from_pretrained(str(paths["speech"]))
        speech = dimensional_model_class().from_pretrained(str(paths["speech"])).to(dev).eval()

        def bare_speech(batch: int, items: list[AudioClip]) -> None:
            with torch.inference_mode():
                for start in range(0, len(items), batch):
                    inputs = extractor([c.samples for c in items[start:start + batch]], sampling_rate=TARGET_SAMPLE_RATE,
                                       padding=True, return_tensors="pt", return_attention_mask=True).to(dev)
                    speech(**inputs).cpu()

        regressor = Wav2Vec2DimensionalRegressor(card("bench-speech", Task.SPEECH_EMOTION_DIMENSIONAL,
                                                      "wav2vec2_dimensional", paths["speech"]))
        regressor.load()
        regressor.predict_batch(clips[:8])
        few = min(args.bare_one // 4 or 1, len(clips))
        seconds = {"bare_one": [s * len(clips) / few for s in timed(args.runs, lambda: bare_speech(1, clips[:few]))],
                   "bare_batch32": timed(args.runs, lambda: bare_speech(32, clips)),
                   "zoo": timed(args.runs, lambda: regressor.predict_batch(clips))}
        audio = sum(c.duration for c in clips)
        report["speech_regressor"] = _summary(seconds, len(clips), "clips", {
            "batch_items": regressor.batch_items, "audio_seconds": round(audio, 1),
            "zoo_audio_s_per_wall_s": round(audio / statistics.median(seconds["zoo"]), 1)})
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


def _summary(seconds: dict[str, list[float]], items: int, unit: str, extra: dict[str, Any]) -> dict[str, Any]:
    medians = {way: statistics.median(values) for way, values in seconds.items()}
    out: dict[str, Any] = {f"{way}_{unit}_per_s": round(items / median, 1) for way, median in medians.items()}
    out.update({f"zoo_over_{way}": round(median / medians["zoo"], 2) for way, median in medians.items() if way != "zoo"})
    return {"items": items, **out, **extra, "seconds": {k: [round(v, 3) for v in vs] for k, vs in seconds.items()}}


if __name__ == "__main__":
    main()
