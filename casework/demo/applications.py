"""Intake demo data (the lead wires `seed_demo_data` into `seed_demo`). Idempotent; made through the services.

- The risk officer maintains the negative list and the admission criteria in admin, so `demo_risk` gets
  staff status (admin access; the admin grants the risk role those two models only).
- One manual negative-list entry, so the admin list and the pre-screen have something to show.
The FAQ knowledge base is reference data (applications.faq.seed_faq, run with every migrate).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from applications.models import NegativeListEntry
from applications.services import negative_list_add

DEMO_NEGATIVE_USCC = "91310000MA1FL0CX1U"


def seed_demo_data(users: dict) -> None:
    risk = users.get("demo_risk")
    if risk is not None and not risk.is_staff:
        risk.is_staff = True
        risk.save(update_fields=["is_staff"])
    if not NegativeListEntry.objects.filter(uscc=DEMO_NEGATIVE_USCC).exists():
        negative_list_add(by=risk, uscc=DEMO_NEGATIVE_USCC, reason="演示：涉嫌骗贷，风险部列入 / demo: suspected loan fraud",
                          expires_on=timezone.localdate() + dt.timedelta(days=365))
