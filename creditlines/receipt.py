"""The drawdown receipt (借款借据): a Chinese PDF with the project's CJK font (contracts/pdf.py), rendered on request from
the drawdown and its loan, which never change once funded (so the drawdown itself never waits on the renderer)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from contracts.amount_words import amount_to_chinese
from contracts.pdf import render_pdf
from contracts.services import CONTRACT_CSS, METHOD_LABELS, lender

from .models import Drawdown


def receipt_context(drawdown: Drawdown) -> dict:
    line, loan = drawdown.line, drawdown.loan
    return {
        "d": drawdown, "line": line, "loan": loan, "lender": lender(), "css": CONTRACT_CSS,
        "amount": f"{drawdown.amount:,.2f}", "amount_words": amount_to_chinese(drawdown.amount),
        "rate_percent": f"{line.annual_rate * 100:.4f}".rstrip("0").rstrip("."),
        "method": METHOD_LABELS.get(drawdown.repayment_method, drawdown.repayment_method),
        "installments": [{"n": i.n, "due_date": i.due_date, "principal": f"{i.principal:,.2f}", "interest": f"{i.interest:,.2f}"}
                         for i in loan.installments.filter(superseded=False).order_by("n")],
        "issued_at": timezone.localtime(drawdown.created_at),
    }


def receipt_pdf(drawdown: Drawdown) -> bytes:
    html = render_to_string("creditlines/receipt.html", receipt_context(drawdown))
    return render_pdf(html, static_roots=[settings.BASE_DIR / "static"], title=f"借款借据 {drawdown.receipt_number}",
                      header_text=f"借据号 {drawdown.receipt_number}")
