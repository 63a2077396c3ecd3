"""Reading and checking settings from the environment.

Development needs no environment at all; production refuses to start until every
setting it cannot do without is present and safe, naming the variable to fix.
"""

from __future__ import annotations

from collections.abc import Mapping

INSECURE_SECRET_PREFIX = "django-insecure-"  # noqa: S105 - the prefix we refuse
PRODUCTION = "production"
DEVELOPMENT = "development"


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(env: Mapping[str, str], name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]


def production_problems(env: Mapping[str, str]) -> list[str]:
    """Every reason the environment is not fit for production, one sentence each.

    Each sentence starts with the variable to fix, so an operator reading a failed
    start knows exactly what to change.
    """
    problems: list[str] = []
    secret = env.get("SECRET_KEY", "")
    if not secret:
        problems.append("SECRET_KEY is not set: generate 50+ random characters.")
    elif len(secret) < 50 or len(set(secret)) < 5 or secret.startswith(INSECURE_SECRET_PREFIX):
        problems.append(
            "SECRET_KEY is insecure: use at least 50 random characters, "
            f"not a '{INSECURE_SECRET_PREFIX}' development key."
        )
    if env_bool(env, "DEBUG"):
        problems.append("DEBUG must be off in production: unset it or set DEBUG=false.")
    hosts = env_list(env, "ALLOWED_HOSTS")
    if not hosts:
        problems.append("ALLOWED_HOSTS is not set: list the site's host names, comma-separated.")
    elif "*" in hosts:
        problems.append("ALLOWED_HOSTS must not contain '*': list the site's host names.")
    database_url = env.get("DATABASE_URL", "")
    if not database_url:
        problems.append("DATABASE_URL is not set: point it at PostgreSQL (postgres://...).")
    elif not database_url.startswith(("postgres://", "postgresql://")):
        problems.append("DATABASE_URL must point at PostgreSQL (postgres://...).")
    if not env.get("CELERY_BROKER_URL"):
        problems.append("CELERY_BROKER_URL is not set: point it at Redis (redis://...).")
    if not env.get("ENCRYPTION_KEYS"):
        problems.append(
            "ENCRYPTION_KEYS is not set: generate one with "
            "`python manage.py generate_encryption_key`."
        )
    if not env.get("EMAIL_HOST"):
        problems.append("EMAIL_HOST is not set: Convene must be able to send email.")
    if not env.get("DEFAULT_FROM_EMAIL"):
        problems.append("DEFAULT_FROM_EMAIL is not set: the address Convene's emails come from.")
    return problems
