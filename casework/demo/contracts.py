"""Demo data for the contracts stage (called by casework.demo.seed_demo; idempotent; real services only):
a secured case whose contract package (loan, mortgage, guarantee) is signed and sealed and whose disbursement
waits in the operations queue for the mortgage registration, which operations check off with evidence."""

from __future__ import annotations

from applications.models import Enterprise, LoanApplication
from casework import lifecycle
from casework.demo.cases import _draft, _enterprise, _submit, _to_approval, verify_representative

DEMO_ENTERPRISE = "上海临港装备制造有限公司"


def seed_demo_data(users: dict) -> None:
    owner = users["demo_applicant"]
    if Enterprise.objects.filter(owner=owner, name=DEMO_ENTERPRISE).exists():
        return
    enterprise = _enterprise(owner, 5, "good", DEMO_ENTERPRISE, grades="BC", industry="C3484", revenue="22000000", employees=85)
    application = _submit(_draft(owner, enterprise, "secured-operating", "2500000", 36, "equal_installment",
                                 purpose="购置数控加工设备"), owner)
    if application.status != LoanApplication.Status.UNDER_REVIEW or application.route != "branch":
        return  # the sandbox routed it elsewhere: nothing to show here
    _to_approval(application, users)
    lifecycle.case_decide(application_id=application.pk, user=users["demo_branch_approver"], decision="approve",
                          comment="同意，落实抵押登记及法定代表人保证后放款",
                          conditions=[{"code": "REGISTERED_MORTGAGE", "text": "办妥厂房抵押登记"},
                                      {"code": "ADD_GUARANTOR", "text": "法定代表人提供连带责任保证"}])
    lifecycle.offer_accept(application_id=application.pk, user=owner)
    lifecycle.customer_sign_all(application_id=application.pk, user=owner, ip="127.0.0.1", user_agent="demo",
                                verification=verify_representative(owner, enterprise))
    loan_contract = application.contracts.filter(kind="loan").order_by("-version").first()
    lifecycle.contract_sign(contract_id=loan_contract.pk, user=users["demo_ops"], party="bank", ip="127.0.0.1",
                            user_agent="demo")
