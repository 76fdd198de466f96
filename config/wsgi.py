"""The WSGI application (gunicorn: `gunicorn -c config/gunicorn.py config.wsgi`).

Importing it declares every actor (so /metrics knows every queue) and refuses a database
behind a transaction-pooling proxy (apps/common/database.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from apps.common.database import database_refuse_transaction_pooling  # noqa: E402
from config.tasks import TASK_MODULES  # noqa: E402

for _module in TASK_MODULES:
    __import__(_module)
database_refuse_transaction_pooling()
