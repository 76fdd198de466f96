"""The README's Security section documents the production environment that `check --deploy` is run with."""

from __future__ import annotations

import re

from django.conf import settings

from tests.test_production_settings import PRODUCTION


def test_the_documented_production_environment_is_the_one_check_deploy_passes_with() -> None:
    readme = (settings.BASE_DIR / "README.md").read_text()
    security = readme.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
    block = security.split("### Production settings", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    documented = set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]+)=", block))

    # Every variable the check runs with is documented, and nothing documented is left out of it
    # but the proxies (whose default, none, is what the check sees).
    assert set(PRODUCTION) == documented - {"TRUSTED_PROXIES"}
    assert "manage.py check --deploy --fail-level WARNING` reports no issues" in security
