"""Sentio settings.

With no environment variables set, Sentio runs in its embedded default: SQLite, local media
files and a Celery broker kept in local folders, so the whole main job runs on one machine
without services. Production switches each part by environment variable (see .env.example).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str

REPO_DIR = Path(__file__).resolve().parents[2]
BASE_DIR = REPO_DIR
DATA_DIR = Path(env_str("SENTIO_DATA_DIR", str(REPO_DIR / "var"))).resolve()

MODE = env_choice("SENTIO_MODE", "embedded", ("embedded", "production"))
PRODUCTION = MODE == "production"

DEBUG = env_bool("DJANGO_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when SENTIO_MODE=production.")


def _secret_key() -> str:
    if PRODUCTION:
        key = env_str("SECRET_KEY", "")
        if not key:
            raise ImproperlyConfigured("SECRET_KEY is required when SENTIO_MODE=production (50+ random characters).")
        if len(key) < 50:
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long in production.")
        return key
    # Embedded default: a random key made once per installation, never a hard-coded one.
    from_env = env_str("SECRET_KEY", "")
    if from_env:
        return from_env
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

if PRODUCTION:
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must list the site's host names explicitly in production.")
else:
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "corpora",
    "jobs",
    "annotation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [REPO_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite by default, PostgreSQL (psycopg 3) through DATABASE_URL.
_database_url = env_str("DATABASE_URL", "")
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if PRODUCTION and (
        DATABASES["default"].get("ENGINE") != "django.db.backends.postgresql" or not DATABASES["default"].get("NAME")
    ):
        raise ImproperlyConfigured(
            "DATABASE_URL must point to a PostgreSQL database (postgres://user:password@host:5432/name) "
            "when SENTIO_MODE=production."
        )
else:
    if PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL is required when SENTIO_MODE=production.")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "sentio.sqlite3"),
            "OPTIONS": {
                # The web process and the worker share the file: wait for locks, take them early.
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
_test_db_name = env_str("SENTIO_TEST_DB_NAME", "")
if _test_db_name:
    DATABASES["default"].setdefault("TEST", {})["NAME"] = _test_db_name

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("hi", "हिन्दी")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
# frontend/dist holds the built UI (scripts/build-frontend); it is served at /static/sentio/.
STATICFILES_DIRS = [p for p in [REPO_DIR / "frontend" / "static", REPO_DIR / "frontend" / "dist"] if p.exists()]
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"

# Storage: local files by default, an S3-compatible object store with SENTIO_STORAGE=s3.
STORAGE_BACKEND = env_choice("SENTIO_STORAGE", "local", ("local", "s3"))
_s3_bucket = env_str("AWS_STORAGE_BUCKET_NAME", "").strip()
_s3_endpoint = env_str("AWS_S3_ENDPOINT_URL", "").strip()
_s3_region = env_str("AWS_S3_REGION_NAME", "").strip()
# Where browsers fetch signed audio links from; the Content-Security-Policy must allow it.
_s3_media_origins: list[str] = []
if STORAGE_BACKEND == "s3":
    if not _s3_bucket:
        raise ImproperlyConfigured("AWS_STORAGE_BUCKET_NAME is required when SENTIO_STORAGE=s3.")
    if _s3_endpoint:
        _endpoint = urlsplit(_s3_endpoint)
        if _endpoint.scheme not in ("http", "https") or not _endpoint.netloc:
            raise ImproperlyConfigured(
                f"AWS_S3_ENDPOINT_URL={_s3_endpoint!r} is not an http(s) URL such as https://s3.example.org."
            )
        _s3_media_origins = [f"{_endpoint.scheme}://{_endpoint.netloc}"]
    else:
        _s3_media_origins = [f"https://{_s3_bucket}.s3.amazonaws.com"] + (
            [f"https://{_s3_bucket}.s3.{_s3_region}.amazonaws.com"] if _s3_region else []
        )
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _s3_bucket,
            "endpoint_url": _s3_endpoint or None,
            "region_name": _s3_region or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY", "") or None,
            "default_acl": None,
            "querystring_auth": True,
            "signature_version": "s3v4",  # botocore would sign links with SigV2, which newer regions refuse
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Uploads: big corpora go through the import job, not into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
IMPORT_MAX_FILE_BYTES = env_int("SENTIO_IMPORT_MAX_FILE_BYTES", 2 * 1024**3, minimum=1)
IMPORT_MAX_LINE_BYTES = env_int("SENTIO_IMPORT_MAX_LINE_BYTES", 1024 * 1024, minimum=1024)
IMPORT_MAX_AUDIO_BYTES = env_int("SENTIO_IMPORT_MAX_AUDIO_BYTES", 200 * 1024 * 1024, minimum=1)
IMPORT_MAX_AUDIO_SECONDS = env_int("SENTIO_IMPORT_MAX_AUDIO_SECONDS", 600, minimum=1)
IMPORT_MAX_ZIP_RATIO = env_int("SENTIO_IMPORT_MAX_ZIP_RATIO", 100, minimum=1)
IMPORT_MAX_ZIP_BYTES = env_int("SENTIO_IMPORT_MAX_ZIP_BYTES", 20 * 1024**3, minimum=1)
IMPORT_MAX_ZIP_MEMBERS = env_int("SENTIO_IMPORT_MAX_ZIP_MEMBERS", 1_000_000, minimum=1)

# Server-side fetches of user-given URLs (a Label Studio server, media links in imported tasks) go to public
# addresses only (config/outbound.py); these hosts, addresses or networks (CIDR) may be private, e.g. a Label
# Studio on this machine: localhost,127.0.0.1 or 10.0.0.0/8.
OUTBOUND_ALLOWED_HOSTS = env_list("SENTIO_OUTBOUND_ALLOWED_HOSTS")
# The address people reach Sentio at (https://sentio.example.org): exported media links are made absolute with it.
PUBLIC_URL = env_str("SENTIO_PUBLIC_URL", "").strip().rstrip("/")
if PUBLIC_URL and (urlsplit(PUBLIC_URL).scheme not in ("http", "https") or not urlsplit(PUBLIC_URL).netloc):
    raise ImproperlyConfigured(f"SENTIO_PUBLIC_URL={PUBLIC_URL!r} is not an http(s) URL such as https://sentio.example.org.")

# Celery: Redis in production; in the embedded default a broker kept in local folders, so the
# worker needs no separate service. Work never runs inline in the web process.
_broker_dir = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    if PRODUCTION:
        raise ImproperlyConfigured("CELERY_BROKER_URL is required when SENTIO_MODE=production.")
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis hands an unacknowledged message (its worker died) to another worker after this many seconds;
    # it must outlast the hard time limit, or a long task would run twice at once.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7 * 3600, minimum=60),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300, minimum=1)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "reap-stuck-jobs": {"task": "workers.tasks.reap_stuck_jobs", "schedule": 300.0},
}
# Projects on corpora up to this size get their work items at once; bigger ones in a background job.
PROJECT_ITEMS_INLINE_MAX = env_int("SENTIO_PROJECT_ITEMS_INLINE_MAX", 20_000, minimum=0)
# Agreement reports of sources up to this many annotations are computed in the request (0: always in a job).
AGREEMENT_SYNC_MAX_ANNOTATIONS = env_int("SENTIO_AGREEMENT_SYNC_MAX_ANNOTATIONS", 5_000, minimum=0)
AGREEMENT_N_RESAMPLES = env_int("SENTIO_AGREEMENT_N_RESAMPLES", 1_000, minimum=0)
AGREEMENT_MAX_RESAMPLES = env_int("SENTIO_AGREEMENT_MAX_RESAMPLES", 10_000, minimum=1)
JOB_STALE_AFTER_SECONDS = env_int("SENTIO_JOB_STALE_AFTER_SECONDS", 900, minimum=30)
JOB_MAX_ATTEMPTS = env_int("SENTIO_JOB_MAX_ATTEMPTS", 3, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Sentio API",
    "DESCRIPTION": "Multilingual emotion corpora: corpora, utterances, label schemas, projects, imports and jobs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Security defaults.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:", *_s3_media_origins],
        # Waveform views fetch() the audio they draw, so signed storage links must be allowed here too.
        "connect-src": ["'self'", *_s3_media_origins],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "worker-src": ["'self'", "blob:"],
    }
}
X_FRAME_OPTIONS = "DENY"
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.middleware.ExceptionReporterFilter"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the browser UI reads it to send X-CSRFToken
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/projects/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
