"""The one core-banking adapter (核心系统接口): take the record of a released disbursement (放款), debit a borrower's
settlement account (自动扣款), take a batch of vouchers (汇总记账凭证), and give the core's daily file of what it
booked. It knows accounts, amounts and references, nothing of loans.

* ``SandboxCoreBanking`` answers deterministically here (demo, tests, development): a settlement account's balance
  is derived from the account and the date, sometimes short, so full, partial and failed debits all happen; a
  released disbursement is written as one JSON line in CORE_BANKING_OUTBOUND_DIR.
* ``HttpCoreBanking`` talks JSON over HTTP(S) to the bank's core system with a timeout per call.

`core_banking()` returns the one the `CORE_BANKING_BACKEND` setting names. Every call carries a reference that the
core de-duplicates on (the same reference answers the first result), so a call repeated after a crash never moves
money twice. Callers never hold a row lock while they wait for an answer.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from .models import VoucherBatch

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The core's daily file (docs/ledger.md "The core's daily file"): UTF-8 CSV with this header.
DAILY_FILE_COLUMNS = ("date", "branch", "account", "debit", "credit", "voucher_reference")


class CoreBankingError(Exception):
    """The core did not answer usably (unreachable, timed out, refused, or an answer we cannot read)."""


@dataclass(frozen=True)
class DebitResult:
    """What the core did with a debit request: `debited` (0 up to the amount asked), its own reference, and why it
    took less (e.g. insufficient funds)."""

    debited: Decimal
    core_reference: str = ""
    error: str = ""


class CoreBanking(Protocol):
    name: str

    def disbursement_send(self, *, record: dict) -> str: ...

    def debit(self, *, account: str, amount: Decimal, reference: str, on: dt.date) -> DebitResult: ...

    def vouchers_send(self, *, reference: str, business_date: dt.date, lines: list[dict]) -> str: ...

    def daily_file(self, *, on: dt.date) -> str: ...


def _unit(*parts: str) -> float:
    """A number in [0, 1) fixed by the parts (the sandbox's dice)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def daily_file_text(rows: list[dict]) -> str:
    """The daily file as the core writes it, from rows with the DAILY_FILE_COLUMNS keys."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DAILY_FILE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in DAILY_FILE_COLUMNS})
    return out.getvalue()


class SandboxCoreBanking:
    """Deterministic answers. With funds "derived" (the default) an account has, on a date, enough for the debit
    about 70 % of the time, part of it about 15 % (20 %–90 % of what was asked) and nothing the rest; "full" and
    "empty" are for tests and the demo. The daily file holds the lines of the vouchers it was sent for the date,
    with an injected difference when `difference` says so ("amount", "missing" or "extra")."""

    name = "sandbox"

    def __init__(self, *, funds: str = "derived", difference: str = "") -> None:
        if funds not in ("derived", "full", "empty"):
            raise ValueError(f"unknown sandbox funds {funds!r}")
        if difference not in ("", "amount", "missing", "extra"):
            raise ValueError(f"unknown sandbox difference {difference!r}")
        self.funds = funds
        self.difference = difference

    def balance(self, *, account: str, amount: Decimal, on: dt.date) -> Decimal:
        """The settlement account's available balance on `on` as the sandbox sees it for a debit of `amount`."""
        if self.funds == "full":
            return amount
        if self.funds == "empty":
            return ZERO
        dice = _unit("balance", account, on.isoformat())
        if dice < 0.70:
            return amount
        if dice < 0.85:
            share = Decimal(20 + int(_unit("share", account, on.isoformat()) * 70)) / 100
            return (amount * share).quantize(CENT)
        return ZERO

    def disbursement_send(self, *, record: dict) -> str:
        """The sandbox's core books a release as one JSON line in CORE_BANKING_OUTBOUND_DIR (default var/outbound/),
        a file per day; its reference is ``CB`` and the order's number."""
        folder = Path(settings.CORE_BANKING_OUTBOUND_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"disbursements-{timezone.localdate():%Y%m%d}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return f"CB{record['order']:010d}"

    def debit(self, *, account: str, amount: Decimal, reference: str, on: dt.date) -> DebitResult:
        available = self.balance(account=account, amount=amount, on=on)
        debited = min(amount, available)
        core_ref = f"SBX-D-{hashlib.sha256(reference.encode()).hexdigest()[:12].upper()}" if debited > 0 else ""
        error = "" if debited == amount else "余额不足 / Insufficient funds"
        return DebitResult(debited=debited, core_reference=core_ref, error=error)

    def vouchers_send(self, *, reference: str, business_date: dt.date, lines: list[dict]) -> str:
        return f"SBX-V-{hashlib.sha256(reference.encode()).hexdigest()[:12].upper()}"

    def daily_file(self, *, on: dt.date) -> str:
        rows = []  # the sandbox plays the core: what it was sent is what it booked
        for batch in VoucherBatch.objects.filter(business_date=on, status=VoucherBatch.Status.SENT).order_by("pk"):
            for line in batch.voucher_lines():
                rows.append({"date": line["value_date"], "branch": line["branch"], "account": line["account"],
                             "debit": line["debit"], "credit": line["credit"], "voucher_reference": line["reference"]})
        if rows and self.difference == "amount":
            first = rows[0]
            side = "debit" if Decimal(first["debit"]) else "credit"
            first[side] = f"{Decimal(first[side]) + Decimal('1.00'):.2f}"
        elif rows and self.difference == "missing":
            rows.pop()
        elif self.difference == "extra":
            rows.append({"date": on.isoformat(), "branch": "", "account": "2011", "debit": "0.00", "credit": "88.00",
                         "voucher_reference": f"CORE-{on:%Y%m%d}-9999"})
        return daily_file_text(rows)


class HttpCoreBanking:
    """JSON over HTTP(S) to the core: ``POST {url}/disbursements`` the release record {order, application, contract,
    amount, …} → {reference}; ``POST {url}/debits`` {account, amount, reference, date} → {debited, reference,
    error}; ``POST {url}/vouchers`` {reference, business_date, lines} → {reference}; ``GET {url}/daily-files/{date}``
    → the CSV. Each call waits at most `timeout` seconds; any failure is a CoreBankingError (the caller records it
    and tries again later with the same reference)."""

    name = "http"
    max_response_bytes = 20_000_000

    def __init__(self, base_url: str, *, timeout: float = 5.0, token: str = "",
                 opener: Callable[..., Any] | None = None) -> None:
        if not base_url:
            raise ValueError("CORE_BANKING_URL is required for the http core-banking adapter")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "loanservice-ledger/1",
                        **({"Authorization": f"Bearer {token}"} if token else {})}
        self._open = opener or urllib.request.urlopen

    def _call(self, method: str, path: str, body: dict | None = None) -> bytes:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        headers = {**self.headers, **({"Content-Type": "application/json"} if data is not None else {})}
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers, method=method)
        try:
            with self._open(request, timeout=self.timeout) as response:
                payload = response.read(self.max_response_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise CoreBankingError(f"core banking answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise CoreBankingError(f"core banking unreachable: {getattr(exc, 'reason', exc)}") from exc
        if len(payload) > self.max_response_bytes:
            raise CoreBankingError("core banking answer too large")
        return payload

    def _json(self, method: str, path: str, body: dict) -> dict:
        try:
            data = json.loads(self._call(method, path, body).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CoreBankingError("core banking answer is not JSON") from exc
        if not isinstance(data, dict):
            raise CoreBankingError("core banking answer is not an object")
        return data

    def disbursement_send(self, *, record: dict) -> str:
        core_ref = str(self._json("POST", "/disbursements", record).get("reference") or "")
        if not core_ref:
            raise CoreBankingError("core banking did not acknowledge the disbursement")
        return core_ref[:60]

    def debit(self, *, account: str, amount: Decimal, reference: str, on: dt.date) -> DebitResult:
        data = self._json("POST", "/debits", {"account": account, "amount": f"{amount:.2f}", "reference": reference,
                                              "date": on.isoformat()})
        try:
            debited = Decimal(str(data.get("debited", ""))).quantize(CENT)
        except InvalidOperation as exc:
            raise CoreBankingError("core banking answer has no debited amount") from exc
        if debited < 0 or debited > amount:
            raise CoreBankingError(f"core banking debited {debited} of {amount}")
        return DebitResult(debited=debited, core_reference=str(data.get("reference") or "")[:60],
                           error=str(data.get("error") or "")[:200])

    def vouchers_send(self, *, reference: str, business_date: dt.date, lines: list[dict]) -> str:
        data = self._json("POST", "/vouchers", {"reference": reference, "business_date": business_date.isoformat(),
                                                "lines": lines})
        core_ref = str(data.get("reference") or "")
        if not core_ref:
            raise CoreBankingError("core banking did not acknowledge the vouchers")
        return core_ref[:60]

    def daily_file(self, *, on: dt.date) -> str:
        payload = self._call("GET", f"/daily-files/{urllib.parse.quote(on.isoformat())}")
        try:
            return payload.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CoreBankingError("the core's daily file is not UTF-8") from exc


def core_banking() -> CoreBanking:
    """The adapter the settings choose (CORE_BANKING_BACKEND: sandbox or http)."""
    backend = getattr(settings, "CORE_BANKING_BACKEND", "sandbox")
    if backend == "sandbox":
        return SandboxCoreBanking(funds=getattr(settings, "CORE_BANKING_SANDBOX_FUNDS", "derived"),
                                  difference=getattr(settings, "CORE_BANKING_SANDBOX_DIFFERENCE", ""))
    if backend == "http":
        return HttpCoreBanking(settings.CORE_BANKING_URL, timeout=settings.CORE_BANKING_TIMEOUT,
                               token=getattr(settings, "CORE_BANKING_TOKEN", ""))
    raise ValueError(f"unknown CORE_BANKING_BACKEND {backend!r}")
