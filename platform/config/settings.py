"""Sentio settings.

With no environment variables set, Sentio runs in its embedded default: SQLite, local media
files and a Celery broker kept in local folders, so the whole main job runs on one machine
without services. Production switches each part by environment variable (see .env.example).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from datetime import timedelta
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
        # The rule of Django's own deploy check (security.W009), refused here instead of warned about.
        if len(set(key)) < 5 or key.startswith("django-insecure-"):
            raise ImproperlyConfigured(
                "SECRET_KEY is weak (fewer than 5 different characters, or Django's generated 'django-insecure-' "
                "key): use 50+ random characters in production."
            )
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
    "axes",
    "accounts",
    "corpora",
    "jobs",
    "annotation",
]

MIDDLEWARE = [
    # First: every later part (HTTPS redirect, lockouts, throttles) sees the client as the trusted proxy says.
    "config.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.PathIdRangeMiddleware",
    # Last, as django-axes asks: answers a locked-out sign-in with 429.
    "axes.middleware.AxesMiddleware",
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
        # Health checks: a connection kept open (conn_max_age) but dropped by the server is replaced before a
        # request or task uses it, instead of failing it.
        DATABASES = {"default": dj_database_url.parse(
            _database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if DATABASES["default"].get("ENGINE") == "django.db.backends.postgresql":
        # Django's backend with a health check that needs no round trip while the server has said nothing.
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    if PRODUCTION and (
        DATABASES["default"].get("ENGINE") != "config.postgresql" or not DATABASES["default"].get("NAME")
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

# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR networks); requests
# from anywhere else have those headers removed (config.proxy). Empty: no proxy is trusted.
SENTIO_TRUSTED_PROXIES = env_list("SENTIO_TRUSTED_PROXIES")
try:
    for _proxy in SENTIO_TRUSTED_PROXIES:
        ipaddress.ip_network(_proxy, strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(f"SENTIO_TRUSTED_PROXIES: {exc} (use addresses or networks like 172.28.0.0/24)") from None

# The cache every process shares: login throttles and lockouts must count across processes. Redis in production;
# in the embedded default a folder under SENTIO_DATA_DIR, which every local process sees.
_cache_url = env_str("SENTIO_CACHE_URL", "")
if _cache_url:
    if urlsplit(_cache_url).scheme not in ("redis", "rediss", "unix"):
        raise ImproperlyConfigured(f"SENTIO_CACHE_URL={_cache_url!r} must be a redis:// (or rediss://) URL.")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url,
                          "KEY_PREFIX": "sentio"}}
elif PRODUCTION:
    raise ImproperlyConfigured(
        "SENTIO_CACHE_URL is required when SENTIO_MODE=production (redis://host:6379/1): throttles and login "
        "lockouts must be shared by every web process."
    )
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(DATA_DIR / "cache")}}

AUTHENTICATION_BACKENDS = [
    # django-axes first: refuses sign-ins from a client locked out after too many wrong passwords.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lockout after this many wrong passwords for one user name from one address (sign-in page, admin, token API),
# for this long; counted in the database, so across every process.
AXES_FAILURE_LIMIT = env_int("SENTIO_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("SENTIO_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "config.proxy.client_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# API tokens expire this many days after they were made (or last renewed by signing in again).
TOKEN_TTL = timedelta(days=env_int("SENTIO_TOKEN_TTL_DAYS", 30, minimum=1))

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
# Days an import's uploaded files are kept after its job ends (0: deleted as soon as it ends).
IMPORT_UPLOADS_KEEP_DAYS = env_int("SENTIO_IMPORT_UPLOADS_KEEP_DAYS", 0, minimum=0)

# Server-side fetches of user-given URLs (a Label Studio server, media links in imported tasks) go to public
# addresses only (config/outbound.py); these hosts, addresses or networks (CIDR) may be private, e.g. a Label
# Studio on this machine: localhost,127.0.0.1 or 10.0.0.0/8.
OUTBOUND_ALLOWED_HOSTS = env_list("SENTIO_OUTBOUND_ALLOWED_HOSTS")
# LLM endpoints (annotation/llm): when set, the only hosts (or networks) an endpoint may be registered at, on top of
# the SSRF guard above (which still refuses private addresses unless SENTIO_OUTBOUND_ALLOWED_HOSTS lists them).
LLM_ENDPOINT_HOSTS = env_list("SENTIO_LLM_ENDPOINT_HOSTS")
# Fernet key (urlsafe base64 of 32 bytes) that encrypts LLM API keys at rest; empty: derived from SECRET_KEY (HKDF).
LLM_KEY_SECRET = env_str("SENTIO_LLM_KEY_SECRET", "")
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
    # it must outlast the hard time limit, or a long task would run twice at once. (A job whose worker died is
    # sent again much sooner by the reaper, below; its old message then finds the job taken.)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7 * 3600, minimum=60),
    }
    # Every key Celery writes starts with this prefix (kombu's global_keyprefix): installations or test runs
    # sharing one Redis database cannot take each other's messages, and each can delete its own keys.
    _key_prefix = env_str("SENTIO_CELERY_KEY_PREFIX", "")
    if _key_prefix:
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = _key_prefix
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300, minimum=1)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Jobs: a running job's worker writes a heartbeat every quarter of the stale window; the reaper (Celery beat, every
# JOB_REAP_EVERY_SECONDS) sends a job whose heartbeat stopped back to its task, so a dead worker's job shows its
# true state within stale window + reaper period (under a minute), and sends again jobs that waited too long.
JOB_STALE_AFTER_SECONDS = env_int("SENTIO_JOB_STALE_AFTER_SECONDS", 40, minimum=10)
JOB_REAP_EVERY_SECONDS = env_int("SENTIO_JOB_REAP_EVERY_SECONDS", 15, minimum=1)
JOB_PENDING_RESEND_SECONDS = env_int("SENTIO_JOB_PENDING_RESEND_SECONDS", 30, minimum=10)
JOB_MAX_ATTEMPTS = env_int("SENTIO_JOB_MAX_ATTEMPTS", 3, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "reap-stuck-jobs": {"task": "workers.tasks.reap_stuck_jobs", "schedule": float(JOB_REAP_EVERY_SECONDS)},
    "sweep-import-uploads": {"task": "workers.tasks.sweep_import_uploads", "schedule": 3600.0},
}
# Projects on corpora up to this size get their work items at once; bigger ones in a background job.
PROJECT_ITEMS_INLINE_MAX = env_int("SENTIO_PROJECT_ITEMS_INLINE_MAX", 20_000, minimum=0)
# Agreement reports of sources up to this many annotations are computed in the request (0: always in a job).
AGREEMENT_SYNC_MAX_ANNOTATIONS = env_int("SENTIO_AGREEMENT_SYNC_MAX_ANNOTATIONS", 5_000, minimum=0)
AGREEMENT_N_RESAMPLES = env_int("SENTIO_AGREEMENT_N_RESAMPLES", 1_000, minimum=0)
AGREEMENT_MAX_RESAMPLES = env_int("SENTIO_AGREEMENT_MAX_RESAMPLES", 10_000, minimum=1)

# Password guesses through the token API, per client address and shared by every process (the cache above).
TOKEN_SIGN_IN_RATE = env_str("SENTIO_TOKEN_SIGN_IN_RATE", "60/minute")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", TOKEN_SIGN_IN_RATE):
    raise ImproperlyConfigured(f"SENTIO_TOKEN_SIGN_IN_RATE={TOKEN_SIGN_IN_RATE!r} must look like 60/minute.")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.auth.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only (uploads declare multipart on their own views), read by a parser that refuses what would
    # fail deep inside (huge numbers, NUL characters, deep nesting) with a 400 naming the field.
    "DEFAULT_PARSER_CLASSES": ["config.drf.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Error bodies are capped (config.drf): a request with 300,000 bad keys gets 100 reasons, not 29 MB.
    "EXCEPTION_HANDLER": "config.drf.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": TOKEN_SIGN_IN_RATE},
    # Throttles count per client address as config.proxy.TrustedProxyMiddleware set it, never a raw header.
    "NUM_PROXIES": 0,
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
    # Two "kind" fields (a job's, an LLM prompt template's) need their own enum names.
    "ENUM_NAME_OVERRIDES": {"JobKindEnum": "jobs.models.JobKind", "PromptKindEnum": "annotation.models.PromptKind"},
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
