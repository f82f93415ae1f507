import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import get_resolver  # noqa: E402

application = get_wsgi_application()
# Load the URLconf (every view, serializer and DRF setting) now instead of on the first request, then move everything
# loaded so far out of the garbage collector's reach: it lives as long as the process, and full collections that
# walked it paused requests for milliseconds.
get_resolver().url_patterns  # noqa: B018
gc.freeze()
