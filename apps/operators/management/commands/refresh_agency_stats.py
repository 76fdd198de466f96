"""Refresh every agency's figures for the operators' console now, in this process."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.operators.stats import agency_stats_refresh_all


class Command(BaseCommand):
    help = "Read every agency's figures in its schema into the console's table (the scheduler does it too)."

    def handle(self, *args: Any, **options: Any) -> None:
        done = agency_stats_refresh_all()
        self.stdout.write(self.style.SUCCESS(f"Refreshed the figures of {done} agency(ies)."))
