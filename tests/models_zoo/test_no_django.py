"""models_zoo runs in workers and scripts without Django: importing all of it must not pull Django in."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import models_zoo

REPO = Path(__file__).resolve().parents[2]


def test_models_zoo_never_imports_django() -> None:
    modules = sorted(m.name for m in pkgutil.walk_packages(models_zoo.__path__, "models_zoo."))
    assert "models_zoo.registry" in modules and "models_zoo.backends.whisper" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from models_zoo.registry import catalogue\n"
        "catalogue()\n"
        "assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))\n"
        "print('ok', len(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
