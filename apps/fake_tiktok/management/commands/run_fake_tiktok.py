"""Serve the fake TikTok until Ctrl-C, with the app's client key and secret from the settings."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.fake_tiktok.server import FakeTikTok


def _same_host(url: str) -> str:
    """The URL with localhost spelled as 127.0.0.1, to compare where two URLs point."""
    return url.rstrip("/").replace("//localhost:", "//127.0.0.1:")


class Command(BaseCommand):
    help = (
        "Serve the fake TikTok (authorize page, OAuth, Content Posting and Display APIs, signed webhooks, "
        "control API under /_fake/) until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--webhook-url", default=None, help="Where to POST signed webhooks.")
        parser.add_argument(
            "--verified-url-prefix",
            action="append",
            default=[],
            help="A URL prefix verified for PULL_FROM_URL (photo posts are downloaded from it); repeatable.",
        )
        parser.add_argument(
            "--processing-seconds",
            type=float,
            default=2.0,
            help="Time from the last chunk to PUBLISH_COMPLETE.",
        )
        parser.add_argument(
            "--publicly-available-seconds",
            type=float,
            default=4.0,
            help="Time from PUBLISH_COMPLETE to the public post id.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            fake = FakeTikTok(
                client_key=settings.TIKTOK_CLIENT_KEY,
                client_secret=settings.TIKTOK_CLIENT_SECRET,
                host=options["host"],
                port=options["port"],
                webhook_url=options["webhook_url"],
                processing_seconds=options["processing_seconds"],
                publicly_available_seconds=options["publicly_available_seconds"],
                verified_url_prefixes=options["verified_url_prefix"],
            )
            fake.start()
        except (OSError, ValueError) as exc:
            raise CommandError(f"The fake TikTok could not start: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Fake TikTok serving at {fake.base_url}"))
        self.stdout.write(f"  authorize page: {fake.authorize_url}")
        self.stdout.write(f"  client_key: {fake.client_key}")
        self.stdout.write(f"  webhooks to: {fake.webhook_url or '(none; pass --webhook-url)'}")
        self.stdout.write("  creators:")
        for creator in fake.creators:
            self.stdout.write(f"    {creator.open_id:<26} @{creator.username:<15} {creator.note}")
        if _same_host(settings.TIKTOK_API_BASE_URL) != _same_host(fake.base_url):
            self.stdout.write(
                self.style.WARNING(
                    f"  TIKTOK_API_BASE_URL is {settings.TIKTOK_API_BASE_URL}: the app uses another TikTok."
                )
            )
        self.stdout.write("Quit with Ctrl-C.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            fake.stop()
