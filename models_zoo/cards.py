"""Model cards: what a model does, for which languages and labels, under which licence, and where it lies."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from models_zoo.errors import ModelUnavailableError
from models_zoo.hf_cache import hf_cache_dirs, hf_cached_snapshot


class Task(StrEnum):
    TEXT_EMOTION = "text_emotion"
    SPEECH_EMOTION_CATEGORICAL = "speech_emotion_categorical"
    SPEECH_EMOTION_DIMENSIONAL = "speech_emotion_dimensional"
    ASR = "asr"
    EMBEDDING = "embedding"


class SourceKind(StrEnum):
    PACKAGE = "package"  # an installed Python package; ``ref`` is its import name, ``subpath`` a folder in it
    PACKAGE_PARTS = "package_parts"  # a file split over several packages; assembled once into the model cache
    LOCAL_PATH = "local_path"  # a folder or file on this machine
    HF_CACHE = "hf_cache"  # a Hugging Face id, looked up in the local cache only


MULTILINGUAL = "mul"  # ISO 639-2 code for "many languages"


def model_cache_dir() -> Path:
    """Where assembled models live: SENTIO_MODEL_CACHE, else ~/.cache/sentio/models."""
    configured = os.environ.get("SENTIO_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "sentio" / "models"


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    ref: str  # import name, path, or Hugging Face id
    subpath: str = ""
    revision: str = "main"  # Hugging Face cache only
    parts: tuple[str, ...] = ()  # PACKAGE_PARTS: "package:relative/file" of each part, in order
    extra_files: tuple[str, ...] = ()  # PACKAGE_PARTS: "package:relative/file" copied next to the assembled file
    assembled_name: str = ""  # PACKAGE_PARTS: the file name the parts make

    def describe(self) -> str:
        if self.kind is SourceKind.PACKAGE:
            return f"package {self.ref}" + (f" ({self.subpath})" if self.subpath else "")
        if self.kind is SourceKind.PACKAGE_PARTS:
            return "packages " + " + ".join(sorted({p.split(":", 1)[0] for p in self.parts}))
        if self.kind is SourceKind.HF_CACHE:
            return f"Hugging Face {self.ref}@{self.revision} (local cache only)"
        return f"local path {self.ref}"


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    version: str  # changes whenever the weights change; predictions are unique per (utterance, version)


@dataclass(frozen=True)
class ModelCard:
    id: str
    task: Task
    backend: str  # key into models_zoo.backends.BACKENDS
    source: ModelSource
    license: str
    languages: tuple[str, ...] = (MULTILINGUAL,)
    labels: tuple[str, ...] = ()  # categorical label set, or dimension names for A/V/D models
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def supports_language(self, language: str) -> bool:
        base = language.split("-")[0].lower()
        return MULTILINGUAL in self.languages or base in {code.split("-")[0].lower() for code in self.languages}

    def locate(self) -> Path | str:
        """Where the weights lie here, or a sentence saying why they cannot be found. Loads nothing."""
        return _locate(self.source)

    def resolve(self) -> ResolvedModel:
        """The local path of the weights (assembling split packages once) and a version string."""
        located = _locate(self.source)
        if isinstance(located, str):
            raise ModelUnavailableError(self.id, located)
        path = _assemble_parts(self.source) if self.source.kind is SourceKind.PACKAGE_PARTS else located
        return ResolvedModel(path=path, version=_version_of(self, path))


def _package_dir(import_name: str) -> Path | None:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _package_file(spec: str) -> Path | str:
    package, _, relative = spec.partition(":")
    root = _package_dir(package)
    if root is None:
        return f"Python package {package!r} is not installed (pip install {package.replace('_', '-')})"
    path = root / relative
    if not path.is_file():
        return f"package {package!r} has no file {relative!r}"
    return path


def _locate(source: ModelSource) -> Path | str:
    """The path of the model, or a sentence saying why it cannot be found."""
    if source.kind is SourceKind.PACKAGE:
        root = _package_dir(source.ref)
        if root is None:
            return f"Python package {source.ref!r} is not installed (pip install {source.ref.replace('_', '-')})"
        path = root / source.subpath if source.subpath else root
        return path if path.exists() else f"package {source.ref!r} has no {source.subpath!r}"
    if source.kind is SourceKind.PACKAGE_PARTS:
        for spec in (*source.parts, *source.extra_files):
            found = _package_file(spec)
            if isinstance(found, str):
                return found
        return model_cache_dir() / _parts_folder_name(source)
    if source.kind is SourceKind.LOCAL_PATH:
        path = Path(source.ref).expanduser()
        return path if path.exists() else f"local path {str(path)!r} does not exist"
    snapshot = hf_cached_snapshot(source.ref, source.revision)
    if snapshot is None:
        looked = ", ".join(str(p) for p in hf_cache_dirs())
        return (f"{source.ref}@{source.revision} is not in the local Hugging Face cache (looked in {looked}); "
                "Sentio never downloads weights: copy the model there or register it by local path")
    return snapshot


def _parts_folder_name(source: ModelSource) -> str:
    versions = []
    for package in sorted({p.split(":", 1)[0] for p in source.parts}):
        try:
            versions.append(f"{package}-{importlib.metadata.version(package.replace('_', '-'))}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(package)
    return "+".join(versions)


def _assemble_parts(source: ModelSource) -> Path:
    """Concatenate the parts into the model cache once; a half-written file never takes the final name."""
    target_dir = model_cache_dir() / _parts_folder_name(source)
    part_paths = [_required_package_file(spec) for spec in source.parts]
    target = target_dir / source.assembled_name
    if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in part_paths):
        return target_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    for extra in (_required_package_file(spec) for spec in source.extra_files):
        if not (target_dir / extra.name).is_file():
            tmp = target_dir / f".{extra.name}.{os.getpid()}.tmp"
            tmp.write_bytes(extra.read_bytes())
            tmp.replace(target_dir / extra.name)
    tmp = target_dir / f".{source.assembled_name}.{os.getpid()}.tmp"
    with tmp.open("wb") as out:
        for part in part_paths:
            with part.open("rb") as chunks:
                while chunk := chunks.read(8 << 20):
                    out.write(chunk)
    tmp.replace(target)
    return target_dir


def _required_package_file(spec: str) -> Path:
    found = _package_file(spec)
    if isinstance(found, str):
        raise ModelUnavailableError(spec, found)
    return found


def _version_of(card: ModelCard, path: Path) -> str:
    source = card.source
    if source.kind is SourceKind.PACKAGE:
        try:
            return f"{card.id}@{source.ref}=={importlib.metadata.version(source.ref.replace('_', '-'))}"
        except importlib.metadata.PackageNotFoundError:
            pass
    if source.kind is SourceKind.PACKAGE_PARTS:
        return f"{card.id}@{_parts_folder_name(source)}"
    if source.kind is SourceKind.HF_CACHE:
        return f"{card.id}@{path.name[:12]}"
    return f"{card.id}@{_content_digest(path)}"


def _content_digest(path: Path) -> str:
    """A short digest of the weight files (names, sizes and, for small files, contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}".encode())
        if stat.st_size <= 64 << 20:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]
