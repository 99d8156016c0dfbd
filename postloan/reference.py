"""The reference post-loan policy as data (buckets, the 2023 five-category floors, the default policy, prepayment
rules, the early-warning rules): seeded by migration 0003 and, through `casework.reference_data`, after every
migrate and test flush, so a database never lacks it. Idempotent: what admins edited is kept."""

from __future__ import annotations

import importlib

from django.apps import apps


def seed_postloan_policy() -> None:
    # The migration's own function and data, run against the current models: one definition of the defaults.
    importlib.import_module("postloan.migrations.0003_reference_policy").seed(apps, None)
