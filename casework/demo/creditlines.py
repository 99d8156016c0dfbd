"""Demo data for credit lines (called by casework.demo.seed_demo through `seed_demo_data(users)`; idempotent; the real
services only): demo_applicant's fast-track revolving line (信易贷循环额度) for 上海信易商贸有限公司, signed, with two
drawdowns: one paid to the firm's own account (自主支付) and one above the self-payment limit paid to a named supplier
(受托支付), and part of the first repaid, so the line's page shows limit, used, available and both receipts."""

from __future__ import annotations

from decimal import Decimal

from applications.models import Enterprise, LoanApplication
from casework import lifecycle
from casework.demo.cases import _draft, _enterprise, _submit, sign_as_borrower
from creditlines.services import drawdown_create
from loanservice.business_date import business_date
from postloan.services import repayment_record

LINE_ENTERPRISE = "上海信易商贸有限公司"


def seed_demo_data(users: dict) -> None:
    owner, ops = users["demo_applicant"], users["demo_ops"]
    if Enterprise.objects.filter(owner=owner, name=LINE_ENTERPRISE).exists():
        return
    enterprise = _enterprise(owner, 23, "prime", LINE_ENTERPRISE, grades="AB", revenue="15000000", employees=45)
    application = _submit(_draft(owner, enterprise, "xinyidai-line", "600000", 12, "equal_installment", purpose="日常经营周转"), owner)
    if application.status != LoanApplication.Status.APPROVED:
        return
    lifecycle.offer_accept(application_id=application.pk, user=owner)
    contract = application.contracts.get()
    sign_as_borrower(contract, owner)
    lifecycle.fast_track_complete(contract.pk)
    application.refresh_from_db()
    line = getattr(application, "credit_line", None)
    if line is None:
        return
    first, _ = drawdown_create(line_id=line.pk, user=owner, idempotency_key="demo-1", amount=Decimal("80000.00"), term_months=6,
                               repayment_method="daily_interest")
    drawdown_create(line_id=line.pk, user=owner, idempotency_key="demo-2", amount=Decimal("350000.00"), term_months=12,
                    repayment_method="equal_installment", payee_name="苏州华信电子材料有限公司", payee_account="6228480012345678")
    repayment_record(loan=first.loan, amount=Decimal("30000.00"), paid_on=business_date(), reference=f"DEMO-LINE-{first.pk}",
                     by=ops, channel="api")
