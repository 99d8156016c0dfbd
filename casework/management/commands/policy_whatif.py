"""`python manage.py policy_whatif`: replay a period's decided cases under a draft matrix or a cut-off."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from approvals.models import AuthorityMatrixVersion
from approvals.services import matrix_version_activate
from casework.whatif import policy_whatif
from loanservice.errors import ApplicationError, Conflict


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value}") from exc


class Command(BaseCommand):
    help = "政策回测 / Replay decided cases under a draft authority matrix or a score cut-off; optionally activate the draft."

    def add_arguments(self, parser):
        today = timezone.localdate()
        parser.add_argument("--from", dest="date_from", default=(today - dt.timedelta(days=90)).isoformat())
        parser.add_argument("--to", dest="date_to", default=today.isoformat())
        parser.add_argument("--matrix", type=int, help="matrix version number (default: the newest draft, else the active one)")
        parser.add_argument("--cutoff-points", type=int, default=None, help="decline automatically below this score")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--activate", action="store_true", help="activate the version after the replay")
        parser.add_argument("--by", default="", help="username recorded as the activator (required with --activate)")

    def handle(self, *args, **options):
        versions = AuthorityMatrixVersion.objects.all()
        if options["matrix"]:
            version = versions.filter(number=options["matrix"]).first()
            if version is None:
                raise CommandError(f"no matrix version {options['matrix']}")
        else:
            version = (versions.filter(is_active=False, activated_at__isnull=True).order_by("-number").first()
                       or versions.filter(is_active=True).first())
        date_from, date_to = _date(options["date_from"]), _date(options["date_to"])
        if date_to < date_from:
            raise CommandError("--to is before --from")
        result = policy_whatif(date_from=date_from, date_to=date_to, version=version, cutoff_points=options["cutoff_points"])
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False, default=str, indent=1))
        else:
            self._print(result)
        if options["activate"]:
            user = get_user_model().objects.filter(username=options["by"]).first()
            if user is None:
                raise CommandError("--activate needs --by <username> of the person who activates it")
            try:
                matrix_version_activate(version=version, by=user, reason="policy_whatif")
            except (ApplicationError, Conflict) as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"v{version.number} activated")

    def _print(self, r: dict) -> None:
        out = self.stdout.write
        out(f"matrix v{r['version']} ({r['version_state']}), cut-off {r['cutoff_points'] or '-'}, "
            f"{r['date_from']} .. {r['date_to']}: {r['cases']} decided cases")
        out(f"{'route':<14}{'actual':>8}{'replay':>8}")
        for row in r["routes"]:
            out(f"{row['route']:<14}{row['actual']:>8}{row['replay']:>8}")
        out(f"auto share     {r['auto_share']['actual']} -> {r['auto_share']['replay']}")
        out(f"approval rate  {r['approval_rate']['actual']} -> {r['approval_rate']['replay']}")
        p = r["changed_performance"]
        out(f"route changes: {p['count']} ({p['with_loan']} with a loan; DPD>0: {p['dpd_gt_0']}, DPD>30: {p['dpd_gt_30']}, "
            f"max DPD: {p['max_dpd']})")
        for c in r["changed"]:
            out(f"  #{c['id']} {c['product']} {c['amount']:.2f} {c['grade']}: {c['from']} -> {c['to']}"
                f" ({c['outcome']} -> {c['projected']}) dpd={c['dpd'] if c['dpd'] is not None else '-'}")
