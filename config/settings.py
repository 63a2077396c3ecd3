"""Convene's settings, read from the environment.

With no environment at all this is a working development site: SQLite, Celery tasks
run in-process, email printed to the console. `CONVENE_ENV=production` switches to
production, which refuses to start with missing or insecure settings.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from config.env import DEVELOPMENT, PRODUCTION, env_bool, env_list, production_problems

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ

CONVENE_ENV = ENV.get("CONVENE_ENV", DEVELOPMENT)
if CONVENE_ENV not in {DEVELOPMENT, PRODUCTION}:
    raise ImproperlyConfigured(
        f"CONVENE_ENV must be '{DEVELOPMENT}' or '{PRODUCTION}', not {CONVENE_ENV!r}."
    )
IS_PRODUCTION = CONVENE_ENV == PRODUCTION
if IS_PRODUCTION and (problems := production_problems(ENV)):
    raise ImproperlyConfigured(
        "Convene will not start in production mode until these settings are fixed:\n  - "
        + "\n  - ".join(problems)
    )


def _development_secret_key() -> str:
    # A key generated once per checkout, so sessions survive restarts of `make run`.
    path = BASE_DIR / "var" / "dev-secret-key"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(get_random_secret_key())
    return path.read_text().strip()


SECRET_KEY = ENV.get("SECRET_KEY") or _development_secret_key()
DEBUG = env_bool(ENV, "DEBUG", default=not IS_PRODUCTION)
ALLOWED_HOSTS = env_list(ENV, "ALLOWED_HOSTS", "" if IS_PRODUCTION else "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list(ENV, "CSRF_TRUSTED_ORIGINS")
SITE_URL = ENV.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.microsoft",
    "apps.accounts",
    "apps.calendars",
    "apps.appointments",
    "apps.mentoring",
    "apps.integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "apps.accounts.middleware.UserTimezoneMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        ENV.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'convene.sqlite3'}",
        conn_max_age=int(ENV.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if ENV.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": ENV["TEST_DATABASE_NAME"]}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    (BASE_DIR / "var").mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

SITE_ID = 1

# Fernet keys for credentials at rest, newest first (see apps/calendars/crypto.py).
ENCRYPTION_KEYS = env_list(ENV, "ENCRYPTION_KEYS")

# Email: printed to the console in development.
DEFAULT_FROM_EMAIL = ENV.get("DEFAULT_FROM_EMAIL", "Convene <convene@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if ENV.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = ENV["EMAIL_HOST"]
    EMAIL_PORT = int(ENV.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = ENV.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = ENV.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool(ENV, "EMAIL_USE_TLS", default=True)
    EMAIL_TIMEOUT = 30
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

# django-allauth: email is the login; calendar scopes are asked for only when a
# calendar is connected, never at sign-in.
ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = ENV.get("ACCOUNT_EMAIL_VERIFICATION", "optional")
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
# Tokens are taken from the sign-in answer into the calendar account's encrypted
# credentials (apps/calendars/oauth_connect.py): allauth's own token table would hold
# them in plain text, so it stays empty.
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_ADAPTER = "apps.calendars.oauth_connect.SocialAccountAdapter"
SOCIALACCOUNT_LOGIN_ON_GET = False


def _base_url(name: str, default: str) -> str:
    return ENV.get(name, default).rstrip("/")


# Where Google and Microsoft are: settings, so tests, staging and air-gapped installs
# can point them elsewhere.
GOOGLE_ACCOUNTS_URL = _base_url("GOOGLE_ACCOUNTS_URL", "https://accounts.google.com")
GOOGLE_OAUTH_URL = _base_url("GOOGLE_OAUTH_URL", "https://oauth2.googleapis.com")
GOOGLE_API_URL = _base_url("GOOGLE_API_URL", "https://www.googleapis.com")
MICROSOFT_LOGIN_URL = _base_url("MICROSOFT_LOGIN_URL", "https://login.microsoftonline.com")
MICROSOFT_GRAPH_URL = _base_url("MICROSOFT_GRAPH_URL", "https://graph.microsoft.com")
# The public HTTPS address Google and Microsoft send change notifications to. Unset:
# no push channels, calendars are polled, and the admin says real-time updates are off.
PUBLIC_BASE_URL = _base_url("PUBLIC_BASE_URL", "")

SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {
    # Sign-in scopes only: the calendar scopes are added when a calendar is connected
    # (apps/calendars/oauth_connect.py says which and why).
    "google": {
        "SCOPE": ["openid", "email"],
        "AUTH_PARAMS": {"access_type": "offline", "prompt": "consent"},
        "ACCESS_TOKEN_URL": f"{GOOGLE_OAUTH_URL}/token",
        "AUTHORIZE_URL": f"{GOOGLE_ACCOUNTS_URL}/o/oauth2/v2/auth",
        "IDENTITY_URL": f"{GOOGLE_API_URL}/oauth2/v2/userinfo",
        "CERTS_URL": f"{GOOGLE_API_URL}/oauth2/v1/certs",
    },
    "microsoft": {"SCOPE": ["openid", "email", "User.Read", "offline_access"]},
}
# Client ids and secrets come from the environment when set; otherwise from the
# admin's "Social applications".
for _provider, _prefix in (("google", "GOOGLE"), ("microsoft", "MICROSOFT")):
    if ENV.get(f"{_prefix}_CLIENT_ID"):
        _app: dict[str, object] = {
            "client_id": ENV[f"{_prefix}_CLIENT_ID"],
            "secret": ENV.get(f"{_prefix}_CLIENT_SECRET", ""),
        }
        if _provider == "microsoft":
            _app["settings"] = {
                "tenant": ENV.get("MICROSOFT_TENANT", "common"),
                "login_url": MICROSOFT_LOGIN_URL,
                "graph_url": MICROSOFT_GRAPH_URL,
            }
        SOCIALACCOUNT_PROVIDERS[_provider]["APPS"] = [_app]

# Celery: without a broker, tasks run eagerly in-process (development, `make run`).
CELERY_TASK_ALWAYS_EAGER = env_bool(
    ENV, "CELERY_TASK_ALWAYS_EAGER", default=not ENV.get("CELERY_BROKER_URL")
)
# Eager tasks never touch the broker; "memory://" keeps Celery from looking for one.
CELERY_BROKER_URL = ENV.get("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ROUTES = {"calendars.*": {"queue": "sync"}, "appointments.*": {"queue": "push"}}

# Calendar sync: how often busy time is pulled (the beat schedule's initial interval;
# edit it later in the admin under Periodic tasks).
CALENDAR_SYNC_INTERVAL_MINUTES = int(ENV.get("CALENDAR_SYNC_INTERVAL_MINUTES", "5"))
# Hosts (names or CIDR networks) Convene may reach although they are private, e.g. a
# self-hosted CalDAV server on the campus network. More can be added in the admin.
OUTBOUND_ALLOWED_NETWORKS = env_list(ENV, "OUTBOUND_ALLOWED_NETWORKS")
ICLOUD_CALDAV_URL = ENV.get("ICLOUD_CALDAV_URL", "https://caldav.icloud.com/")

REDIS_URL = ENV.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.integrations.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.integrations.api.auth.IsApiCaller"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.integrations.api.auth.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.integrations.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Convene API",
    "DESCRIPTION": "Availability, calendars and appointments. See docs/api.md.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI and Redoc are served from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool(ENV, "SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(ENV.get("SECURE_HSTS_SECONDS", "3600"))
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": ENV.get("LOG_LEVEL", "INFO")},
}
