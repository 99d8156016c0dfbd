"""Demo data for underwriting, made with the real services: collateral, a guarantor and a note on the secured
case waiting in the RM's queue, and the PSI baseline of the expert scorecard. Idempotent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from applications.models import LoanApplication
from underwriting.management.commands.scorecard_psi import sandbox_columns
from underwriting.models import Collateral
from underwriting.providers import make_resident_id
from underwriting.scorecard import development_summary
from underwriting.selectors import scorecard_champion
from underwriting.services import case_note_add, collateral_add, guarantor_add, scorecard_development_set


@transaction.atomic
def seed_demo_data(users: dict) -> None:
    champion = scorecard_champion()
    if not champion.development:

        summary = development_summary(champion.spec, sandbox_columns(300, as_of=timezone.localdate()))
        summary["sample"] = "sandbox population, 300 enterprises (demo)"
        scorecard_development_set(model=champion, summary=summary, by=None)

    case = (LoanApplication.objects.filter(applicant=users.get("demo_applicant"), product__secured=True,
                                           status=LoanApplication.Status.UNDER_REVIEW)
            .exclude(route="").select_related("relationship_manager").order_by("id").first())
    if case is None or case.relationship_manager is None or Collateral.objects.filter(application=case).exists():
        return
    rm = case.relationship_manager
    collateral_add(application=case, by=rm, kind="real_estate", description="上海市闵行区莘庄工业区厂房一幢 1,850㎡",
                   certificate_no="沪(2023)闵字不动产权第018821号", owner_name=case.enterprise.name, valuation=Decimal("3600000.00"),
                   appraiser="上海信衡房地产土地估价有限公司", appraised_on=timezone.localdate() - dt.timedelta(days=35))
    guarantor_add(application=case, by=rm, kind="person", name=case.enterprise.legal_rep_name,
                  id_number=make_resident_id(7001, birth_year=1976), relationship="实际控制人", guaranteed_amount=Decimal("2000000.00"))
    case_note_add(application=case, by=rm, text="电话联系实际控制人，约定下周二现场走访；厂房为自有，已办理抵押登记前的权属核查。")
