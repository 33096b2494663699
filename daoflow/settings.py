"""Settings, all read from environment variables.

Every setting has an embedded default that needs no server: SQLite and a
file-system Celery broker in the data directory, and the local Docker engine
as the default target.
"""

import os
from pathlib import Path

import dj_database_url

from .keys import load_encryption_keys

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


DATA_DIR = Path(os.environ.get("DAOFLOW_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = _env_bool("DAOFLOW_DEBUG", False)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DAOFLOW_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("DAOFLOW_CSRF_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]

FERNET_KEYS = load_encryption_keys(DATA_DIR)
# The keys are real Fernet keys, not passphrases, so no key derivation.
FERNET_USE_HKDF = False


def _secret_key() -> str:
    configured = os.environ.get("DJANGO_SECRET_KEY")
    if configured:
        return configured
    # A stable per-installation value derived from the encryption key file,
    # so sessions survive restarts without a second secret to manage.
    import hashlib

    return hashlib.sha256(("django-secret:" + FERNET_KEYS[0]).encode()).hexdigest()


SECRET_KEY = _secret_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "accounts",
    "services",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files without a separate web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "daoflow.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

WSGI_APPLICATION = "daoflow.wsgi.application"
ASGI_APPLICATION = "daoflow.asgi.application"


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        return dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "daoflow.sqlite3",
        "OPTIONS": {
            # IMMEDIATE transactions take SQLite's write lock at BEGIN, so the
            # select-then-update claims of the deployment queue are serialized
            # as they are by row locks on PostgreSQL.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

# Django's standard checks, applied by `daoflow user create --password-stdin`
# and the admin: not too short, not too common, not all digits, not the
# user name.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# WhiteNoise warns about a missing directory before the first collectstatic.
STATIC_ROOT.mkdir(exist_ok=True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.APITokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "daoflow.renderers.UnfilledFormsBrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "daoflow.api_errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "DaoFlow API",
    "DESCRIPTION": "Projects, servers, services and deployments of a DaoFlow control plane.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Deployment time limits, in seconds. Every step has a timeout and the whole
# run has a deadline; a timeout fails the deployment naming the step.
DAOFLOW_SSH_CONNECT_TIMEOUT = _env_int("DAOFLOW_SSH_CONNECT_TIMEOUT", 10)
DAOFLOW_STEP_TIMEOUT = _env_int("DAOFLOW_STEP_TIMEOUT", 600)
DAOFLOW_HEALTH_TIMEOUT = _env_int("DAOFLOW_HEALTH_TIMEOUT", 120)
DAOFLOW_DEPLOY_DEADLINE = _env_int("DAOFLOW_DEPLOY_DEADLINE", 3600)
DAOFLOW_HEARTBEAT_TIMEOUT = _env_int("DAOFLOW_HEARTBEAT_TIMEOUT", 120)
# A queued deployment older than this is enqueued again by the watchdog, in
# case its task was lost (broker restart, crash between commit and enqueue).
DAOFLOW_REQUEUE_AFTER = _env_int("DAOFLOW_REQUEUE_AFTER", 30)

# Celery. The embedded broker is kombu's file-system transport in the data
# directory: it needs no server, and web and worker processes share it.
_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
        # The file-system transport polls its folder (kombu's default is
        # every second); a shorter interval starts a deployment sooner.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest deployment, so a task held by a live worker
        # with acks_late is not handed to a second worker.
        "visibility_timeout": _env_int(
            "DAOFLOW_BROKER_VISIBILITY_TIMEOUT", max(4 * 3600, 2 * DAOFLOW_DEPLOY_DEADLINE)
        ),
    }
# Installations that share one Redis keep apart by queue name.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("DAOFLOW_TASK_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
# acks_late is safe because run_deployment is idempotent (claim() is a
# conditional update), and prefetch 1 keeps a busy worker from holding tasks
# that an idle worker could run.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _env_bool("DAOFLOW_CELERY_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "deployments-watchdog": {
        "task": "deployments.tasks.watchdog",
        "schedule": float(_env_int("DAOFLOW_WATCHDOG_INTERVAL", 30)),
    },
}

# Deployment execution
DAOFLOW_SSH_DIR = DATA_DIR / "ssh"
DAOFLOW_LOCAL_WORKDIR_ROOT = Path(
    os.environ.get("DAOFLOW_LOCAL_WORKDIR_ROOT", DATA_DIR / "targets")
).resolve()
DAOFLOW_REMOTE_WORKDIR_ROOT = os.environ.get("DAOFLOW_REMOTE_WORKDIR_ROOT", "/var/lib/daoflow")

LOG_LEVEL = os.environ.get("DAOFLOW_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("daoflow", "accounts", "services", "deployments")
    },
}
