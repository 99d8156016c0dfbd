"""The audit trail's nightly check: anchor the days not anchored yet, verify chains and anchors, and raise the
alarm to administrators and risk officers on a break (like the reconciliation alarm)."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext as _

from . import roles
from .audit import VerifyResult, audit_anchor_through, audit_record, audit_verify
from .notifications import in_default_language, notify

log = logging.getLogger(__name__)


def audit_alarm(result: VerifyResult, *, since: dt.date | None) -> None:
    """Record the break (an event of its own chain) and tell every active administrator and risk officer."""
    breaks = [str(b) for b in result.breaks]
    log.error("audit trail verification found %s break(s): %s", len(breaks), "; ".join(breaks[:20]))
    audit_record(actor=None, action="audit.verify.break", to_state="broken",
                 data={"since": since.isoformat() if since else None, "breaks": len(breaks), "first": breaks[:20]})
    with in_default_language():
        title = _("审计链校验发现 %(n)s 处断裂 / Audit trail verification found %(n)s break(s)") % {"n": len(breaks)}
        body = "\n".join(breaks[:20])
        people = (get_user_model().objects.filter(groups__name__in=[roles.ADMIN, roles.RISK], is_active=True)
                  | get_user_model().objects.filter(is_superuser=True, is_active=True)).distinct()
        for user in people:
            notify(user=user, kind="audit_alarm", title=title, body=body, url="/admin/loanservice/auditevent/")


def audit_nightly_check(today: dt.date | None = None) -> dict:
    """Anchor every whole day up to yesterday, then verify the last AUDIT_VERIFY_DAYS days (all when None)."""
    today = today or timezone.localdate()
    anchors = audit_anchor_through(today - dt.timedelta(days=1))
    days = getattr(settings, "AUDIT_VERIFY_DAYS", 7)
    since = today - dt.timedelta(days=days) if days else None
    result = audit_verify(since)
    if not result.ok:
        audit_alarm(result, since=since)
    return {"anchored": [a.day.isoformat() for a in anchors], "events": result.events, "chains": result.chains,
            "anchors": result.anchors, "breaks": [str(b) for b in result.breaks]}
