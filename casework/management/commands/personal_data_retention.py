"""`python manage.py personal_data_retention [--date YYYY-MM-DD] [--dry-run]`: anonymise the personal data of records
past the retention schedule (casework.retention; beat runs it nightly). `--dry-run` lists what would be anonymised."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand

from casework.retention import personal_data_retention


class Command(BaseCommand):
    help = "Anonymise personal data past its retention period (the records stay)."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=dt.date.fromisoformat, default=None, help="as of (default: the business date)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, date, dry_run, **options):
        done = personal_data_retention(today=date, dry_run=dry_run)
        verb = "would anonymise" if dry_run else "anonymised"
        for kind, ids in done.items():
            self.stdout.write(f"{verb} {len(ids)} {kind}(s){': ' + ', '.join(map(str, ids)) if ids else ''}")
