"""Team rules that must hold when two admins act at the same moment (committed data, threads)."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django_tenants.utils import schema_context

from apps.team import services
from apps.users.models import Role, User
from tests.conftest import OWNER_PASSWORD


def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    make_agency: Any, django_db_blocker: Any
) -> None:
    # Given an agency with two owners
    agency = make_agency()
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        first = User.objects.get(email="owner@committed.example")
        second = User.objects.create_superuser("second@committed.example", OWNER_PASSWORD)
    first_acted = threading.Event()
    outcomes: dict[str, str] = {}

    def demote(by: User, member: User, hold: bool) -> None:
        with django_db_blocker.unblock(), schema_context(agency.schema_name):
            try:
                with transaction.atomic():
                    services.member_change_role(member=member, role=Role.ADMIN, by=by)
                    if hold:
                        first_acted.set()
                        time.sleep(0.5)  # the other demotion runs its check before this commits
                outcomes[by.email] = "demoted"
            except ValidationError as exc:
                outcomes[by.email] = exc.messages[0]
            finally:
                first_acted.set()
        connection.close()

    # When each demotes the other at the same moment
    threads = [threading.Thread(target=demote, args=(first, second, True))]
    threads[0].start()
    first_acted.wait(timeout=10)
    threads.append(threading.Thread(target=demote, args=(second, first, False)))
    threads[1].start()
    for thread in threads:
        thread.join(timeout=30)

    # Then one wins, the other is refused, and the agency keeps an owner
    assert outcomes[first.email] == "demoted"
    # Waiting on the owners' lock, the second learns they were demoted meanwhile: no owner to touch
    assert "Only an owner can change an owner" in outcomes[second.email]
    with django_db_blocker.unblock(), schema_context(agency.schema_name):
        assert list(User.objects.filter(role=Role.OWNER).values_list("email", flat=True)) == [first.email]
