"""A contract PDF: the loan contract of a real case rendered by WeasyPrint with the CJK font, timed in process.

    .venv/bin/python bench/run_all.py --only pdf
"""

from __future__ import annotations

import time


def _a_contract():
    from contracts.models import Contract

    contract = Contract.objects.select_related("template").order_by("-id").first()
    if contract is not None:
        return contract
    # No contract yet in the bench database: make one case through the real services.
    from casework import lifecycle
    from casework.demo import _draft, _enterprise
    from loanservice.api import applicant_register

    owner = applicant_register(username=f"bench_pdf_{int(time.time())}", password="Bench-pass-2024", phone="13800000000",
                               email="pdf@bench.example")
    application = _draft(owner, _enterprise(owner, 4242, "prime", "基准测试合同企业", grades="AB"), "xinmiaodai", "300000", 12,
                         "equal_installment")
    lifecycle.application_submit(application_id=application.pk, user=owner)
    lifecycle.score_and_route(application.pk)
    lifecycle.offer_accept(application_id=application.pk, user=owner)
    return Contract.objects.select_related("template").get(application=application)


def run(repeat: int = 10) -> dict:
    from pypdf import PdfReader

    from bench.common import summary
    from contracts.services import contract_render

    contract = _a_contract()
    timings, pages = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        data = contract_render(template=contract.template, number=contract.number, terms=contract.terms)
        timings.append(time.perf_counter() - started)
        import io

        pages = len(PdfReader(io.BytesIO(data)).pages)
    return {"contract": contract.number, "pages": pages, "bytes": len(data), "render": summary(timings[1:]), "first": timings[0]}
