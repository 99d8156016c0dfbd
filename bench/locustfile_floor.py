"""Locust: the floor (loanservice.bench_floor) — authenticated users each POSTing the minimal write once a second,
so the offered rate equals the number of users. FastHttpUser: the lightest client locust has (it shares the cores)."""

from __future__ import annotations

import itertools
import json
import os

from locust import FastHttpUser, constant_throughput, task

TOKENS = itertools.cycle(json.loads(open(os.environ["BENCH_POOL"], encoding="utf-8").read()))


class Caller(FastHttpUser):
    wait_time = constant_throughput(1)

    def on_start(self):
        self.token = next(TOKENS)

    @task
    def floor(self):
        with self.client.post("/api/v1/bench/floor/", headers={"Authorization": f"Token {self.token}"},
                              name="/api/v1/bench/floor/", catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {(r.text or '')[:200]}")
            else:
                with open(os.environ["BENCH_DONE"], "a", encoding="utf-8") as done:
                    done.write(f"{r.json()['id']}\n")
