from __future__ import annotations

import os
import subprocess
import sys

import pytest

from config.env import production_problems

GOOD = {
    "SECRET_KEY": "k3y-" + "a1b2c3d4e5" * 6,
    "ALLOWED_HOSTS": "convene.example.edu",
    "DATABASE_URL": "postgres://convene@db/convene",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "ENCRYPTION_KEYS": "x" * 44,
    "EMAIL_HOST": "smtp.example.edu",
    "DEFAULT_FROM_EMAIL": "Convene <convene@example.edu>",
}


def test_a_complete_production_environment_passes() -> None:
    assert production_problems(GOOD) == []


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "SECRET_KEY"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL"),
        ({"ENCRYPTION_KEYS": ""}, "ENCRYPTION_KEYS"),
        ({"EMAIL_HOST": ""}, "EMAIL_HOST"),
        ({"DEFAULT_FROM_EMAIL": ""}, "DEFAULT_FROM_EMAIL"),
        ({"DEBUG": "true"}, "DEBUG"),
    ],
)
def test_each_missing_or_insecure_setting_is_named(change: dict[str, str], variable: str) -> None:
    problems = production_problems({**GOOD, **change})
    assert len(problems) == 1
    assert problems[0].startswith(variable)


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k != "DEBUG"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_mode_refuses_to_start_naming_the_variable() -> None:
    result = _start({"CONVENE_ENV": "production", **{**GOOD, "SECRET_KEY": ""}})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "DATABASE_URL" not in result.stderr.split("ImproperlyConfigured")[-1]


def test_development_mode_needs_no_environment() -> None:
    result = _start({"CONVENE_ENV": "development", "DATABASE_URL": ""})
    assert result.returncode == 0, result.stderr


def test_unknown_mode_is_refused() -> None:
    result = _start({"CONVENE_ENV": "staging"})
    assert result.returncode != 0
    assert "CONVENE_ENV must be" in result.stderr
