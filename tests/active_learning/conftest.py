from tests.predictions.conftest import world  # noqa: F401  (a small trilingual project with human labels)
from tests.workers.conftest import celery_env  # noqa: F401  (a real worker on real Redis)
