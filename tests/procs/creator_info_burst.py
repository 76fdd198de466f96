"""A worker-like process that calls creator_info N times for one token without waiting.

    python -m tests.procs.creator_info_burst <access_token> <calls>

Prints JSON {"sent": n, "deferred": m}: calls refused by the shared rate limit are
deferred (never sent).
"""

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from apps.tiktok.client import TikTokClient  # noqa: E402
from apps.tiktok.errors import RateLimited  # noqa: E402


def main() -> None:
    token, calls = sys.argv[1], int(sys.argv[2])
    client = TikTokClient(max_wait=0)
    sent = deferred = 0
    # Start together with the other process: wait for the go file.
    go = sys.argv[3] if len(sys.argv) > 3 else ""
    while go and not os.path.exists(go):
        pass
    for _ in range(calls):
        try:
            client.creator_info(access_token=token)
            sent += 1
        except RateLimited:
            deferred += 1
    print(json.dumps({"sent": sent, "deferred": deferred}))


if __name__ == "__main__":
    main()
