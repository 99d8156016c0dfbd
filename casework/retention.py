"""The retention schedule (loanservice.RetentionRule) applied: personal data of records past their retention period
is anonymised, the records stay (DESIGN.md "Trust rules", docs/security.md "Personal data").

Per kind of record, the relationship's end and what is anonymised:
- an enterprise that had a loan (`customer_with_loans`, 10 years for anti-money-laundering): it ends when no loan is
  active, no credit line is in force and no application is open, on the latest of its loans' closing dates and its
  applications' last change;
- an enterprise that never had a loan (`customer_without_loans`): when no application is open, on its applications'
  last change (or when it was recorded, if it never applied);
  for both: the legal representative's name and ID number (and their blind index), every identity verification's
  name, ID number and phone, the person guarantors' names and ID numbers, and the personal fields of its data
  snapshots are cleared; `anonymised_at` is set;
- a marketing prospect (`prospect`): its last contact (or import); the contact's name and phone are cleared.

Each anonymised record is an audit event (`personal_data.anonymise`: the rule, the end date, the fields cleared).
The audit trail itself is never touched: its values were masked when written. Contract PDFs are legal documents kept
with the loan file and are not rewritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from applications.models import Enterprise, IdentityVerification, LoanApplication
from creditlines.models import CreditLine
from loanservice.audit import audit_record
from loanservice.business_date import business_date
from loanservice.masking import is_personal_key
from loanservice.models import RetentionRule
from marketing.models import ContactAttempt, Prospect
from postloan.models import Loan
from underwriting.models import DataSnapshot, Guarantor

ENTERPRISE_FIELDS = ["legal_rep_name", "legal_rep_id_number"]
VERIFICATION_FIELDS = ["person_name", "id_number", "phone"]
PROSPECT_FIELDS = ["contact_name", "contact_phone"]


@dataclass
class Due:
    obj: object
    rule: RetentionRule
    ended_on: dt.date


def years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _day(value) -> dt.date | None:
    if value is None:
        return None
    return timezone.localdate(value) if isinstance(value, dt.datetime) else value


def enterprises_past_retention(*, today: dt.date, rules: dict[str, RetentionRule]) -> list[Due]:
    """Enterprises whose relationship ended more than their rule's years before `today` (not anonymised yet)."""
    loans = Loan.objects.filter(enterprise=OuterRef("pk"))
    apps = LoanApplication.objects.filter(enterprise=OuterRef("pk"))
    ended = (Enterprise.objects.filter(anonymised_at__isnull=True)
             .exclude(Exists(loans.filter(status=Loan.Status.ACTIVE)))
             .exclude(Exists(apps.filter(status__in=LoanApplication.OPEN_STATES)))
             .exclude(Exists(CreditLine.objects.filter(enterprise=OuterRef("pk"), status__in=[
                 CreditLine.Status.ACTIVE, CreditLine.Status.FROZEN])))
             .annotate(had_loan=Exists(loans),
                       last_loan_end=Subquery(loans.values("enterprise").annotate(
                           d=Max(Coalesce("closed_on", "maturity_date"))).values("d")[:1]),
                       last_application=Subquery(apps.values("enterprise").annotate(d=Max("updated_at")).values("d")[:1])))
    due = []
    for enterprise in ended.order_by("pk").iterator():
        rule = rules.get(RetentionRule.CUSTOMER_WITH_LOANS if enterprise.had_loan else RetentionRule.CUSTOMER_WITHOUT_LOANS)
        if rule is None:
            continue
        ends = [d for d in (_day(enterprise.last_loan_end), _day(enterprise.last_application)) if d]
        ended_on = max(ends) if ends else _day(enterprise.created_at)
        if years_after(ended_on, rule.years) < today:
            due.append(Due(enterprise, rule, ended_on))
    return due


def prospects_past_retention(*, today: dt.date, rule: RetentionRule | None) -> list[Due]:
    if rule is None:
        return []
    qs = Prospect.objects.filter(anonymised_at__isnull=True).annotate(last_contact=Subquery(ContactAttempt.objects.filter(prospect=OuterRef("pk")).values("prospect")
                                           .annotate(d=Max("at")).values("d")[:1]))
    due = []
    for prospect in qs.order_by("pk").iterator():
        ended_on = _day(prospect.last_contact or prospect.created_at)
        if years_after(ended_on, rule.years) < today:
            due.append(Due(prospect, rule, ended_on))
    return due


def _scrub(value, key: str = ""):
    """A data snapshot's payload with a natural person's identifiers and name emptied (the rest kept)."""
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, key) for v in value]
    if key and (is_personal_key(key) or key.lower().endswith(("legal_rep_name", "person_name"))):
        return ""
    return value


def enterprise_anonymise(*, enterprise_id: int, due: Due, now: dt.datetime) -> bool:
    with transaction.atomic():
        enterprise = Enterprise.objects.select_for_update().filter(pk=enterprise_id, anonymised_at__isnull=True).first()
        if enterprise is None:
            return False
        for name in ENTERPRISE_FIELDS:
            setattr(enterprise, name, "")
        enterprise.anonymised_at = now
        enterprise.save(update_fields=[*ENTERPRISE_FIELDS, "legal_rep_id_number_bidx", "anonymised_at"])
        verifications = list(IdentityVerification.objects.filter(enterprise=enterprise))
        for record in verifications:
            for name in VERIFICATION_FIELDS:
                setattr(record, name, "")
            record.save(update_fields=VERIFICATION_FIELDS)
        guarantors = list(Guarantor.objects.filter(application__enterprise=enterprise, kind=Guarantor.PERSON))
        for guarantor in guarantors:
            guarantor.name, guarantor.id_number = "", ""
            guarantor.save(update_fields=["name", "id_number"])
        snapshots = 0
        for snap in DataSnapshot.objects.filter(enterprise=enterprise).only("pk", "payload"):
            scrubbed = _scrub(snap.payload)
            if scrubbed != snap.payload:
                DataSnapshot.objects.filter(pk=snap.pk).update(payload=scrubbed)
                snapshots += 1
        audit_record(actor=None, action="personal_data.anonymise", obj=enterprise, data={
            "rule": due.rule.kind, "years": due.rule.years, "relationship_ended_on": due.ended_on.isoformat(),
            "fields": ENTERPRISE_FIELDS, "identity_verifications": len(verifications),
            "person_guarantors": len(guarantors), "data_snapshots": snapshots})
    return True


def prospect_anonymise(*, prospect_id: int, due: Due, now: dt.datetime) -> bool:
    with transaction.atomic():
        prospect = Prospect.objects.select_for_update().filter(pk=prospect_id, anonymised_at__isnull=True).first()
        if prospect is None:
            return False
        prospect.contact_name, prospect.contact_phone, prospect.anonymised_at = "", "", now
        prospect.save(update_fields=[*PROSPECT_FIELDS, "anonymised_at"])
        audit_record(actor=None, action="personal_data.anonymise", obj=prospect, data={
            "rule": due.rule.kind, "years": due.rule.years, "relationship_ended_on": due.ended_on.isoformat(),
            "fields": PROSPECT_FIELDS})
    return True


def personal_data_retention(*, today: dt.date | None = None, dry_run: bool = False) -> dict[str, list[int]]:
    """Anonymises every record past its retention period (as of the business date); returns the ids per kind. Each
    record in its own transaction, re-checked under its row lock; running it twice changes nothing the second time."""
    today = today or business_date()
    rules = {r.kind: r for r in RetentionRule.objects.filter(is_active=True)}
    now = timezone.now()
    done: dict[str, list[int]] = {"enterprise": [], "prospect": []}
    for due in enterprises_past_retention(today=today, rules=rules):
        if dry_run or enterprise_anonymise(enterprise_id=due.obj.pk, due=due, now=now):
            done["enterprise"].append(due.obj.pk)
    for due in prospects_past_retention(today=today, rule=rules.get(RetentionRule.PROSPECT)):
        if dry_run or prospect_anonymise(prospect_id=due.obj.pk, due=due, now=now):
            done["prospect"].append(due.obj.pk)
    return done
