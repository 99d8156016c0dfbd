"""python manage.py audit_verify [--since YYYY-MM-DD] [--anchor] [--alarm]

Recomputes the audit trail's hash chains (every event's hash, every link, every chain head), the stored daily
anchors and the bank's signatures over them (the sandbox CA's audit key); prints each break and exits non-zero
when there is one. `--anchor` also signs anchors stored before anchors were signed, if they still match."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from loanservice.audit import audit_anchor_through, audit_verify
from loanservice.audit_integrity import audit_alarm


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains, daily anchors and their signatures; report breaks."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=dt.date.fromisoformat, help="only events and anchors from this day")
        parser.add_argument("--anchor", action="store_true", help="first anchor every whole day not anchored yet")
        parser.add_argument("--alarm", action="store_true", help="on a break, notify administrators and risk")

    def handle(self, *args, since=None, anchor=False, alarm=False, **options):
        if anchor:
            for a in audit_anchor_through(timezone.localdate() - dt.timedelta(days=1)):
                self.stdout.write(f"anchored {a.day.isoformat()}: {a.chains} chains, {a.events} events, {a.digest}")
        result = audit_verify(since)
        for b in result.breaks:
            self.stdout.write(str(b))
        summary = f"{result.events} events in {result.chains} chains, {result.anchors} anchors checked"
        if result.ok:
            self.stdout.write(self.style.SUCCESS(f"audit trail intact: {summary}"))
            return
        if alarm:
            audit_alarm(result, since=since)
        raise CommandError(f"audit trail broken: {len(result.breaks)} break(s); {summary}")
