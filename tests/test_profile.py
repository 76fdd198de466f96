"""A person's own profile: name and time zone (every time then shown in it), a new email address
that takes effect only from the link sent to it, the password changed with the current one."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from apps.audit.models import AuditLog
from apps.users.models import Role, User
from tenants.models import Agency
from tests.conftest import OWNER_PASSWORD, SMTPServer, client_for
from tests.factories import PostFactory

pytestmark = pytest.mark.django_db

OWNER = "owner@shared.example"
LINK = re.compile(r"https?://\S+/profile/email/\S+/")


def signed_in(agency: Agency, email: str = OWNER, password: str = OWNER_PASSWORD) -> Client:
    client = client_for(agency)
    assert client.post("/login/", {"username": email, "password": password}).status_code == 302
    return client


def test_a_new_time_zone_shows_every_time_in_it(alpha: Agency) -> None:
    client = signed_in(alpha)
    late = dt.datetime(2030, 3, 14, 23, 30, tzinfo=dt.UTC)
    with schema_context(alpha.schema_name):
        User.objects.filter(email=OWNER).update(last_login=late)
        post = PostFactory(caption="Late drop", scheduled_at=late)

    bad = client.post("/profile/", {"name": "Olive Owner", "time_zone": "Mars/Olympus"}).content.decode()
    saved = client.post("/profile/", {"name": "Olive Owner", "time_zone": "Asia/Tokyo"}, follow=True)

    assert "Choose a time zone from the list." in bad and 'value="Olive Owner"' in bad
    page = saved.content.decode()
    assert "Saved. Times are shown in Asia/Tokyo." in page
    assert "15 March 2030, 08:30</time> (Asia/Tokyo)" in page
    assert 'href="/account/two-step/' in page
    assert "/notifications/preferences/" in page and 'href="/password/"' in page
    assert (
        '<time datetime="2030-03-15T08:30:00+09:00">08:30</time>'
        in client.get("/calendar/", {"view": "week", "date": "2030-03-15"}).content.decode()
    )
    post_page = client.get(f"/posts/{post.pk}/").content.decode()
    assert "Fri 15 Mar 2030, 08:30:00 in your time zone (Asia/Tokyo)" in post_page
    with schema_context(alpha.schema_name):
        entry = AuditLog.objects.get(action="profile.changed")
        assert entry.changes["time_zone"] == ["UTC", "Asia/Tokyo"] and entry.actor.email == OWNER


def test_a_new_email_needs_the_password_and_the_link_sent_to_it(
    alpha: Agency, smtp_server: SMTPServer
) -> None:
    client = signed_in(alpha)

    wrong = client.post(
        "/profile/email/", {"email": "olive@new.example", "password": "guess"}
    ).content.decode()
    asked = client.post(
        "/profile/email/", {"email": "Olive@New.example", "password": OWNER_PASSWORD}, follow=True
    ).content.decode()

    assert "That is not your current password." in wrong and 'value="olive@new.example"' in wrong
    assert "We sent a link to olive@new.example" in asked and f"until then you sign in with {OWNER}" in asked
    (mail,) = smtp_server.to("olive@new.example")
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    (link,) = LINK.findall(body.get_content())
    path = urlsplit(link).path
    with schema_context(alpha.schema_name):
        assert User.objects.filter(email=OWNER).exists()  # nothing changes before the link
        User.objects.create_user("editor@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)

    # Someone else signed in cannot use it; the owner is asked first (GET changes nothing), then confirms.
    assert signed_in(alpha, "editor@alpha.example").post(path).status_code == 400
    assert "Sign in with olive@new.example from now on" in client.get(path).content.decode()
    done = client.post(path, follow=True).content.decode()

    assert "Done: you now sign in with olive@new.example." in done
    assert client.post(path).status_code == 400  # used: the address it replaced is gone
    signed_in(alpha, "olive@new.example")
    with schema_context(alpha.schema_name):
        assert AuditLog.objects.get(action="email.changed").changes == {"email": [OWNER, "olive@new.example"]}
        assert AuditLog.objects.filter(action="email.change_requested").count() == 1


def test_an_address_someone_else_uses_is_refused(alpha: Agency, smtp_server: SMTPServer) -> None:
    with schema_context(alpha.schema_name):
        User.objects.create_user("taken@alpha.example", OWNER_PASSWORD, role=Role.EDITOR)

    page = (
        signed_in(alpha)
        .post("/profile/email/", {"email": "TAKEN@alpha.example", "password": OWNER_PASSWORD})
        .content.decode()
    )

    assert "Someone in this agency already signs in with that address." in page
    assert not smtp_server.to("taken@alpha.example")


def test_the_password_changes_only_with_the_current_one(alpha: Agency) -> None:
    client = signed_in(alpha)
    new = {"new_password1": "a-new-long-password-77", "new_password2": "a-new-long-password-77"}

    assert client.post("/password/", {"old_password": "not-it", **new}).status_code == 200
    assert client.post("/password/", {"old_password": OWNER_PASSWORD, **new}).status_code == 302

    signed_in(alpha, OWNER, "a-new-long-password-77")
