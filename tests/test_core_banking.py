"""The voucher outbox to core banking and the core's daily file (issue #17): a batch is sent once, retried after a
failure; the daily file is reconciled line by line (clean, or an injected difference raises the alarm); the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from ledger.core_banking import (
    CoreBankingError,
    HttpCoreBanking,
    SandboxCoreBanking,
    core_banking,
    daily_file_text,
)
from ledger.models import CoreFile, VoucherBatch
from ledger.services import (
    Cr,
    Dr,
    core_file_fetch,
    core_file_import,
    entry_post,
    voucher_batch_build,
    voucher_batch_send,
    vouchers_send_pending,
)
from loanservice.audit import AuditEvent
from loanservice.errors import ApplicationError
from tests.conftest import client_for

D = Decimal
ON = dt.date(2027, 3, 15)


@pytest.fixture
def batch(db):
    entry_post(kind="manual", value_date=ON, lines=[Dr("3001", D("120.00")), Cr("2011", D("120.00"))])
    entry_post(kind="manual", value_date=ON - dt.timedelta(days=1), lines=[Dr("3001", D("5.50")), Cr("2011", D("5.50"))])
    return voucher_batch_build(business_date=ON)


def _opener(answer: dict, seen: list):
    import io
    import json

    class Answer(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def opener(request, timeout):
        seen.append({"method": request.get_method(), "url": request.full_url, "body": json.loads(request.data),
                     "auth": request.get_header("Authorization"), "timeout": timeout})
        return Answer(json.dumps(answer).encode())

    return opener


RECORD = {"order": 42, "application": 7, "contract": "HT-1", "amount": "300000.00", "currency": "CNY",
          "account": "6222", "account_name": "某某公司", "idempotency_key": "k1"}


def test_the_sandbox_books_a_disbursement_as_a_json_line(settings, tmp_path):
    import json

    settings.CORE_BANKING_OUTBOUND_DIR = tmp_path / "outbound"
    adapter = core_banking()
    assert adapter.name == "sandbox" and adapter.disbursement_send(record=RECORD) == "CB0000000042"
    lines = [json.loads(x) for f in (tmp_path / "outbound").iterdir() for x in f.read_text(encoding="utf-8").splitlines()]
    assert lines == [RECORD]


def test_the_http_backend_posts_the_disbursement_and_needs_the_cores_reference():
    seen: list = []
    adapter = HttpCoreBanking("https://core.example/api/", timeout=2.0, token="t0k",
                              opener=_opener({"reference": "CORE-D-9"}, seen))
    assert adapter.disbursement_send(record=RECORD) == "CORE-D-9"
    assert seen == [{"method": "POST", "url": "https://core.example/api/disbursements", "body": RECORD,
                     "auth": "Bearer t0k", "timeout": 2.0}]
    silent = HttpCoreBanking("https://core.example/api", opener=_opener({}, []))
    with pytest.raises(CoreBankingError):
        silent.disbursement_send(record=RECORD)


def test_a_batch_is_sent_once_with_the_cores_reference(batch, monkeypatch):
    calls = []
    send = SandboxCoreBanking.vouchers_send

    def counting(self, **kwargs):
        calls.append(kwargs["reference"])
        return send(self, **kwargs)

    monkeypatch.setattr(SandboxCoreBanking, "vouchers_send", counting)
    sent = voucher_batch_send(batch_id=batch.pk)
    assert sent.status == "sent" and sent.core_reference.startswith("SBX-V-") and sent.attempts == 1 and sent.sent_at
    assert voucher_batch_send(batch_id=batch.pk).status == "sent"
    assert vouchers_send_pending() == {"pending": 0, "sent": 0}
    assert calls == [batch.reference]  # never sent twice
    assert AuditEvent.objects.filter(action="ledger.vouchers_sent").count() == 1


def test_a_failed_send_is_recorded_and_retried_by_the_task(batch, monkeypatch):
    send = SandboxCoreBanking.vouchers_send

    def down(self, **kwargs):
        raise CoreBankingError("core banking unreachable: timed out")

    monkeypatch.setattr(SandboxCoreBanking, "vouchers_send", down)
    failed = voucher_batch_send(batch_id=batch.pk)
    assert failed.status == "pending" and failed.attempts == 1 and "timed out" in failed.last_error
    assert failed.claimed_until is None  # free for the retry at once
    monkeypatch.setattr(SandboxCoreBanking, "vouchers_send", send)
    from ledger.tasks import vouchers_send_pending as task

    assert task.apply().get() == {"pending": 1, "sent": 1}
    batch.refresh_from_db()
    assert batch.status == "sent" and batch.attempts == 2 and batch.last_error == ""


def test_a_batch_held_by_another_sender_is_not_sent_again(batch, monkeypatch):
    from django.utils import timezone

    VoucherBatch.objects.filter(pk=batch.pk).update(claimed_until=timezone.now() + dt.timedelta(minutes=5))

    def never(self, **kwargs):
        raise AssertionError("sent while another sender holds it")

    monkeypatch.setattr(SandboxCoreBanking, "vouchers_send", never)
    assert voucher_batch_send(batch_id=batch.pk).status == "pending"


def test_the_core_file_of_what_was_sent_reconciles_clean(batch):
    voucher_batch_send(batch_id=batch.pk)
    record = core_file_fetch(business_date=ON, by=None)
    assert record.balanced and record.difference_count == 0
    assert record.lines == record.vouchers == record.matched == len(batch.lines) == 4
    assert record.totals["debit"] == record.totals["core_debit"] == "125.50"
    assert record.source == "core"


@pytest.mark.parametrize("difference,kind", [("amount", "amount"), ("missing", "missing_in_core"),
                                             ("extra", "missing_in_ledger")])
def test_an_injected_difference_is_found_and_raises_the_alarm(batch, org, settings, difference, kind):
    from loanservice.models import Notification

    voucher_batch_send(batch_id=batch.pk)
    settings.CORE_BANKING_SANDBOX_DIFFERENCE = difference
    record = core_file_fetch(business_date=ON, by=None)
    assert not record.balanced and record.difference_count == 1
    assert record.differences[0]["kind"] == kind
    assert AuditEvent.objects.filter(action="ledger.core_file", to_state="unbalanced").count() == 1
    alerted = Notification.objects.filter(kind="reconciliation_alarm")
    assert alerted.exists() and all(n.url == reverse("finance:core_file", args=[record.pk]) for n in alerted)


def test_a_batch_not_yet_sent_is_missing_in_the_cores_file(batch):
    record = core_file_import(content=daily_file_text([]), business_date=ON, by=None)
    assert not record.balanced and {d["kind"] for d in record.differences} == {"missing_in_core"}


def test_a_wrong_account_or_a_line_twice_is_a_difference(batch):
    lines = batch.voucher_lines()
    rows = [{"date": x["value_date"], "branch": x["branch"], "account": x["account"], "debit": x["debit"],
             "credit": x["credit"], "voucher_reference": x["reference"]} for x in lines]
    rows[0]["account"] = "9999"
    rows.append(dict(rows[1]))
    record = core_file_import(content=daily_file_text(rows), business_date=ON, by=None)
    assert sorted(d["kind"] for d in record.differences) == ["duplicate", "line"]


def test_a_malformed_file_is_refused_with_the_line_named(batch):
    with pytest.raises(ApplicationError) as refused:
        core_file_import(content="date,account\n2027-03-15,3001\n", business_date=ON, by=None)
    assert "file" in refused.value.errors
    bad = daily_file_text([{"date": "2027-03-15", "branch": "", "account": "3001", "debit": "1.234", "credit": "0",
                            "voucher_reference": "VB1-1"}])
    with pytest.raises(ApplicationError) as refused:
        core_file_import(content=bad, business_date=ON, by=None)
    assert "2" in str(refused.value.errors["file"][0])
    assert not CoreFile.objects.exists()


# ---------------------------------------------------------------- the API and the pages
def _upload(user, content: str, on: dt.date = ON):
    client = client_for(user)
    return client.post(reverse("api:ledger-core-files"), {"business_date": on.isoformat(),
                                                          "file": SimpleUploadedFile("core.csv", content.encode())},
                       format="multipart")


def test_the_api_uploads_and_reads_the_reconciliation(batch, org):
    from django.contrib.auth import get_user_model

    from loanservice import roles

    voucher_batch_send(batch_id=batch.pk)
    text = SandboxCoreBanking(difference="amount").daily_file(on=ON)
    ops = org["demo_ops"]
    response = _upload(ops, text)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["balanced"] is False and body["difference_count"] == 1 and body["differences"][0]["kind"] == "amount"
    detail = client_for(org["demo_risk"]).get(reverse("api:ledger-core-file", args=[body["id"]]))
    assert detail.status_code == 200 and detail.json()["matched"] == 3
    assert client_for(org["demo_risk"]).get(reverse("api:ledger-core-files")).json()[0]["id"] == body["id"]
    # risk reads but does not upload; the RM and the borrower neither
    assert _upload(org["demo_risk"], text).status_code == 403
    assert _upload(org["demo_rm"], text).status_code == 403
    assert client_for(org["demo_rm"]).get(reverse("api:ledger-core-file", args=[body["id"]])).status_code == 403
    # the integration account uploads and sees its own files only
    bot = get_user_model().objects.create_user("core_bot", password="x" * 12)
    from django.contrib.auth.models import Group

    bot.groups.add(Group.objects.get_or_create(name=roles.INTEGRATION)[0])
    mine = _upload(bot, text)
    assert mine.status_code == 201
    assert [x["id"] for x in client_for(bot).get(reverse("api:ledger-core-files")).json()] == [mine.json()["id"]]
    assert client_for(bot).get(reverse("api:ledger-core-file", args=[body["id"]])).status_code == 404
    # a file that is not the core's format is a 400 naming the file
    bad = _upload(ops, "x,y\n1,2\n")
    assert bad.status_code == 400 and "file" in bad.json()["errors"]


def test_the_finance_page_shows_the_outbox_the_files_and_the_days_debits(batch, org, client):
    voucher_batch_send(batch_id=batch.pk)
    client.force_login(org["demo_ops"])
    page = client.get(reverse("finance:core_banking") + f"?on={ON.isoformat()}")
    assert page.status_code == 200
    html = page.content.decode()
    assert batch.reference in html and "SBX-V-" in html
    answer = client.post(reverse("finance:core_file_receive"), {"business_date": ON.isoformat()})
    record = CoreFile.objects.get()
    assert answer.status_code == 302 and answer.url == reverse("finance:core_file", args=[record.pk])
    shown = client.get(answer.url)
    assert shown.status_code == 200 and record.balanced
    client.force_login(org["demo_rm"])
    assert client.get(reverse("finance:core_banking")).status_code == 404  # staff pages hide what is not theirs


@pytest.mark.parametrize("value, loads", [("contracts.services.FileCoreBankingAdapter", True), ("my.CoreAdapter", False)])
def test_the_former_adapter_setting_is_ignored_at_its_old_default_and_refused_otherwise(value, loads):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "CORE_BANKING_ADAPTER": value}
    done = subprocess.run([sys.executable, "-c", "import config.settings as s; print(s.CORE_BANKING_BACKEND)"],
                          cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) is loads
    assert ("sandbox" in done.stdout) if loads else ("CORE_BANKING_BACKEND" in done.stderr)
