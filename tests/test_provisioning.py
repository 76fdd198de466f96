"""New agencies are cloned from the base schema and come out identical to a migrated one."""

from __future__ import annotations

import pytest

from tenants import provisioning
from tests.conftest import REFERENCE_SCHEMA

pytestmark = pytest.mark.django_db


def test_cloned_schema_equals_a_migrated_one() -> None:
    migrated = provisioning.schema_signature(REFERENCE_SCHEMA)
    cloned = provisioning.schema_signature("alpha")
    for part in migrated:
        missing = sorted(migrated[part] - cloned[part])
        extra = sorted(cloned[part] - migrated[part])
        assert (missing, extra) == ([], []), f"{part} differ: missing {missing[:5]}, extra {extra[:5]}"
    assert len(migrated["tables"]) > 20 and len(migrated["constraints"]) > 50 and migrated["triggers"]
