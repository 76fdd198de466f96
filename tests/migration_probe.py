"""A migration that exists only while a test or benchmark says so, to migrate schemas with."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import migrations
from django.db.migrations.loader import MigrationLoader


@contextlib.contextmanager
def extra_migration(
    name: str, operations: list[Any], *, app_label: str = "posts"
) -> Iterator[tuple[str, str]]:
    """Every migration loader built meanwhile (in this process and those it forks) finds one more
    migration of `app_label`, after its latest one."""
    original = MigrationLoader.build_graph
    key = (app_label, name)

    def build_graph(self: MigrationLoader) -> None:
        original(self)
        [leaf] = [node for node in self.graph.leaf_nodes(app_label) if node != key]
        migration = type(
            "Migration", (migrations.Migration,), {"dependencies": [leaf], "operations": operations}
        )(name, app_label)
        self.disk_migrations[key] = migration
        self.graph.add_node(key, migration)
        self.graph.add_dependency(migration, key, leaf)

    MigrationLoader.build_graph = build_graph  # type: ignore[method-assign]
    try:
        yield key
    finally:
        MigrationLoader.build_graph = original  # type: ignore[method-assign]
