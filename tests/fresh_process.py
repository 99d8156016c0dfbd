"""Run by tests/test_fresh_process.py in a process of its own: each user's pages and API reads, with a session made
before the process started (as after a restart), printed as JSON. Nothing runs before the first request, and every
prepared read compiles again before each further user's (loanservice.prepared.forget_compiled).

    python -m tests.fresh_process '[["demo_rm", "<session key>", ["/", "/api/v1/applications/"]], ...]'
"""

from __future__ import annotations

import json
import os
import sys


def main(plan: list) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.test import Client

    from loanservice.prepared import forget_compiled

    got = {}
    for username, session_key, urls in plan:
        forget_compiled()
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = session_key
        for url in urls:
            response = client.get(url, follow=True)
            got[f"{username} {url}"] = [response.status_code, response.redirect_chain[-1][0] if response.redirect_chain else url]
    return got


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
