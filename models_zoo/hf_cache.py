"""Find a Hugging Face model in the local cache only; nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path


def hf_cache_dirs() -> list[Path]:
    """Every folder the Hugging Face libraries may have used as a hub cache, in their order of precedence."""
    candidates: list[Path] = []
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    hf_home = os.environ.get("HF_HOME")
    candidates.append(Path(hf_home) / "hub" if hf_home else Path.home() / ".cache" / "huggingface" / "hub")
    seen: set[Path] = set()
    unique = []
    for path in candidates:
        if path not in seen:
            seen.add(path)
            unique.append(path)
    return unique


def hf_cached_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The snapshot folder of ``repo_id`` at ``revision`` (a branch name or commit hash), or None."""
    folder_name = "models--" + repo_id.replace("/", "--")
    for cache in hf_cache_dirs():
        repo_dir = cache / folder_name
        if not repo_dir.is_dir():
            continue
        commit = revision
        ref_file = repo_dir / "refs" / revision
        if ref_file.is_file():
            commit = ref_file.read_text().strip()
        snapshot = repo_dir / "snapshots" / commit
        if snapshot.is_dir():
            return snapshot
    return None
