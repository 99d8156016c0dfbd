"""Locust: applicants submitting drafts prepared beforehand (bench/bench_load.py writes the pool), each user at
a constant one submission per second, so the offered rate equals the number of users. Loopback only."""

from __future__ import annotations

import json
import os

from locust import FastHttpUser, constant_throughput, task

POOL = json.loads(open(os.environ["BENCH_POOL"], encoding="utf-8").read())  # [[token, pk], ...]


class Applicant(FastHttpUser):  # the lightest client locust has: it shares the two cores with what it measures
    wait_time = constant_throughput(1)

    @task
    def submit(self):
        if not POOL:
            return
        token, pk = POOL.pop()
        with self.client.post(f"/api/v1/applications/{pk}/submit/", headers={"Authorization": f"Token {token}"},
                              name="/api/v1/applications/[id]/submit/", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
            else:
                with open(os.environ["BENCH_DONE"], "a", encoding="utf-8") as done:
                    done.write(f"{pk}\n")
