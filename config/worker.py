"""Entry module for Dramatiq workers: `dramatiq config.worker` (see `manage.py run_worker`).

Sets Django up (which sets the broker up), then imports every module that declares actors.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.tasks import TASK_MODULES  # noqa: E402

for _module in TASK_MODULES:
    __import__(_module)
