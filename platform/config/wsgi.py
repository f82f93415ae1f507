import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

django_application = get_wsgi_application()

from annotation.api_hot_path import handlers_for_database  # noqa: E402 - apps load in get_wsgi_application()
from config.hot_path import HotPathApplication  # noqa: E402

# The annotators' next/submit calls take a short way through in the plain case (config/hot_path.py).
application = HotPathApplication(django_application, handlers_for_database())
