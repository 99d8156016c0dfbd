"""The customer's own RM (首席服务官): assigned on submission by branch (region → branch) and load, kept by the
enterprise, reassigned only by a supervisor (audited; cases and clocks follow), shown to the applicant on every case."""

from __future__ import annotations

import pytest
from django.core import mail
from stdnum.cn import uscc as stdnum_uscc

from applications.models import Enterprise, LoanApplication
from casework import lifecycle
from casework.demo import _user
from loanservice import roles
from loanservice.models import AuditEvent, Branch, Notification, SlaClock
from loanservice.notifications import LocmemSmsBackend
from loanservice.sla import sla_clock_start
from tests.factories import (
    ApplicantFactory,
    ApplicationFactory,
    EnterpriseFactory,
)

pytestmark = pytest.mark.django_db


def _uscc_in(region: str, n: int) -> str:
    first17 = f"91{region}MA1FL{n:03d}"[:17].ljust(17, "0")
    return first17 + stdnum_uscc.calc_check_digit(first17)


def _case(owner, products, *, uscc=None, seed=61, enterprise=None):
    enterprise = enterprise or EnterpriseFactory(owner=owner, seed=seed, grades="", **({"uscc": uscc} if uscc else {}))
    application = ApplicationFactory(applicant=owner, enterprise=enterprise, product=products["xinmiaodai"], amount="300000",
                                     term_months=12, repayment_method="equal_installment", purpose="流动资金", documents=False)
    lifecycle.application_submit(application_id=application.pk, user=owner)
    application.refresh_from_db()
    return application


def test_assignment_by_region_then_branch_default(products, org):
    owner = ApplicantFactory(username="rm_region")
    beijing = _case(owner, products, uscc=_uscc_in("110105", 1))
    assert beijing.branch.code == "BJ01" and beijing.relationship_manager.username == "bj01_rm"
    assert beijing.enterprise.relationship_manager == beijing.relationship_manager
    shanghai = _case(owner, products, uscc=_uscc_in("310115", 2))
    assert shanghai.branch.code == "SH01" and shanghai.relationship_manager == org["demo_rm"]
    elsewhere = _case(owner, products, uscc=_uscc_in("440305", 3))  # Shenzhen: no branch of its own → default
    assert elsewhere.branch == Branch.objects.get(is_default=True)


def test_assignment_by_load_and_the_enterprise_keeps_its_rm(products, org):
    sh = Branch.objects.get(code="SH01")
    second = _user("sh01_rm2", roles.RM, sh, "孙经理", "demo-pass")
    owner = ApplicantFactory(username="rm_load")
    first = _case(owner, products, uscc=_uscc_in("310101", 4))
    assert first.relationship_manager == org["demo_rm"]  # both at zero: the lower id wins
    other = _case(ApplicantFactory(username="rm_load_2"), products, uscc=_uscc_in("310101", 5))
    assert other.relationship_manager == second  # demo_rm now carries one open case
    again = _case(owner, products, enterprise=first.enterprise)
    assert again.relationship_manager == org["demo_rm"]  # the customer keeps its RM, whatever the load


def test_the_applicant_sees_the_rm_name_and_contact_on_every_case(client, products, org):
    owner = ApplicantFactory(username="rm_visible")
    cases = [_case(owner, products, uscc=_uscc_in("310101", n)) for n in (6, 7)]
    client.force_login(owner)
    rm = org["demo_rm"]
    home = client.get("/portal/").content.decode()
    for case in cases:
        block = home[home.index(f'id="case-{case.pk}"'):]
        block = block[:block.index('class="btn')]
        assert "李经理" in block and f'href="tel:{rm.profile.phone}"' in block
        page = client.get(f"/portal/applications/{case.pk}/").content.decode()
        card = page[page.index('id="relationship-manager"'):]
        assert "李经理" in card[:600] and f'href="tel:{rm.profile.phone}"' in card[:600]
        api = client.get(f"/api/v1/applications/{case.pk}/").json()["relationship_manager"]
        assert api == {"username": "demo_rm", "name": "李经理", "phone": rm.profile.phone}


# ---------------------------------------------------------------- reassignment by supervisors
@pytest.fixture
def customer(products, org):
    owner = ApplicantFactory(username="rm_customer")
    case = _case(owner, products, uscc=_uscc_in("310101", 8))
    sla_clock_start(case_id=case.pk, stage="due_diligence", owner=case.relationship_manager, branch=case.branch,
                    product_code="xinmiaodai")
    return case


def test_who_may_open_the_reassignment_page(client, customer, org):
    url = f"/staff/customers/{customer.enterprise_id}/reassign/"
    sh = Branch.objects.get(code="SH01")
    peer = _user("sh01_rm_peer", roles.RM, sh, "周经理", "demo-pass")  # an RM of the branch, not a supervisor
    for user, status in ((org["demo_branch_approver"], 200),  # supervisor of demo_rm and approver of SH01
                         (org["demo_admin"], 200),
                         (peer, 404), (org["demo_rm"], 404),
                         (org["demo_applicant"], 404), (org["demo_ops"], 404)):
        client.force_login(user)
        assert client.get(url).status_code == status, user.username
    bj_approver = org["demo_branch_approver"].__class__.objects.get(username="bj01_approver")
    client.force_login(bj_approver)
    assert client.get(url).status_code == 404  # another branch's approver
    assert customer.enterprise.name not in client.get("/staff/customers/").content.decode()
    client.force_login(org["demo_branch_approver"])
    assert customer.enterprise.name in client.get("/staff/customers/").content.decode()


def test_a_supervisor_reassigns_audited_and_cases_clocks_and_both_sides_follow(client, customer, org, settings,
                                                                               django_capture_on_commit_callbacks):
    settings.SMS_BACKEND = "loanservice.notifications.LocmemSmsBackend"
    LocmemSmsBackend.outbox.clear()
    sh = Branch.objects.get(code="SH01")
    new_rm = _user("sh01_rm_new", roles.RM, sh, "吴经理", "demo-pass")
    supervisor = org["demo_branch_approver"]
    client.force_login(supervisor)
    url = f"/staff/customers/{customer.enterprise_id}/reassign/"
    assert "吴经理" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(url, {"relationship_manager": new_rm.pk, "reason": "原客户经理调岗"})
    assert r.status_code == 302
    customer.refresh_from_db()
    enterprise = Enterprise.objects.get(pk=customer.enterprise_id)
    assert enterprise.relationship_manager == new_rm and customer.relationship_manager == new_rm
    assert SlaClock.objects.get(case_id=customer.pk, stopped_at__isnull=True).owner == new_rm
    event = AuditEvent.objects.get(action="enterprise.reassign_rm")
    assert event.actor == supervisor and event.reason == "原客户经理调岗"
    assert event.data["from"] == "demo_rm" and event.data["to"] == "sh01_rm_new" and event.data["cases"] == [customer.pk]
    assert Notification.objects.filter(user=new_rm, kind="rm_assigned").exists()
    note = Notification.objects.get(user=customer.applicant, kind="rm_changed")
    assert "吴经理" in note.title and new_rm.profile.phone in note.title
    assert any(m.to == [customer.applicant.email] and "吴经理" in m.subject for m in mail.outbox)
    assert any("吴经理" in text for _phone, text in LocmemSmsBackend.outbox)
    # the applicant's page now shows the new RM
    client.force_login(customer.applicant)
    page = client.get(f"/portal/applications/{customer.pk}/").content.decode()
    assert "吴经理" in page[page.index('id="relationship-manager"'):][:600]


def test_reassignment_refuses_bad_input_and_changes_nothing(client, customer, org):
    client.force_login(org["demo_branch_approver"])
    url = f"/staff/customers/{customer.enterprise_id}/reassign/"
    ops = org["demo_ops"]
    for data, field in (({"relationship_manager": "", "reason": "x"}, "只能指派给在岗的客户经理"),
                        ({"relationship_manager": ops.pk, "reason": "x"}, "只能指派给在岗的客户经理"),
                        ({"relationship_manager": org["demo_rm"].pk, "reason": "x"}, "与当前相同"),
                        ({"relationship_manager": "abc", "reason": "x"}, "只能指派给在岗的客户经理")):
        r = client.post(url, data)
        assert r.status_code == 400 and field in r.content.decode()
    sh = Branch.objects.get(code="SH01")
    new_rm = _user("sh01_rm_x", roles.RM, sh, "郑经理", "demo-pass")
    r = client.post(url, {"relationship_manager": new_rm.pk, "reason": "  "})
    assert r.status_code == 400 and "改派原因" in r.content.decode()
    assert Enterprise.objects.get(pk=customer.enterprise_id).relationship_manager == org["demo_rm"]
    assert not AuditEvent.objects.filter(action="enterprise.reassign_rm").exists()


def test_an_rm_of_another_branch_cannot_be_smuggled_in(client, customer, org):
    client.force_login(org["demo_branch_approver"])
    bj_rm = org["demo_rm"].__class__.objects.get(username="bj01_rm")
    r = client.post(f"/staff/customers/{customer.enterprise_id}/reassign/", {"relationship_manager": bj_rm.pk, "reason": "x"})
    assert r.status_code == 400
    assert LoanApplication.objects.get(pk=customer.pk).relationship_manager == org["demo_rm"]
