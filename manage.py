#!/usr/bin/env python
"""Django's command-line utility for Sentio."""

import os
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent
# platform/ is an apps directory, never a package: importing `platform` must give the stdlib.
sys.path.insert(0, str(REPO_DIR / "platform"))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
