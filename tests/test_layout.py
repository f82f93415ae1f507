"""platform/ is an apps directory: it must not shadow the standard library's `platform` module."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_stdlib_platform_module_is_not_shadowed_inside_the_app():
    import platform

    import django

    assert callable(platform.python_version)
    assert platform.python_version().startswith(f"{sys.version_info.major}.")
    assert "site-packages" not in platform.__file__ and "sentio" not in platform.__file__.lower()
    assert not (REPO / "platform" / "__init__.py").exists()
    assert django.VERSION >= (5, 2)


def test_manage_py_process_imports_stdlib_platform():
    code = (
        "import runpy, sys; sys.argv=['manage.py','shell','-c',"
        "'import platform; print(platform.python_version())']; runpy.run_path('manage.py', run_name='__main__')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == __import__("platform").python_version()
