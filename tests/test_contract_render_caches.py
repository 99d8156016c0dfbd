"""The caches behind fast contract PDFs and signatures (issue #20): the CJK font registered once per thread and font
file (contracts.pdf.font_setup), and the signature block's places kept under the issued file's SHA-256
(contracts.services.contract_places). Each must see a change of what it was made from and give what the slow way
gives."""

from __future__ import annotations

import io
import os
import shutil
import threading

import pytest

from contracts import pdf as pdfmod
from contracts.pdf import find_cjk_font, pdf_text, render_pdf
from contracts.seal import seal_box, signature_box, signature_places

HTML = ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body><h1>借款合同</h1>'
        '<p>借款人应按期归还借款本金人民币叁拾万元整。</p>'
        '<table><tr><td>借款人（电子签名）<br>签署日期<span class="sign-line"></span></td>'
        '<td><span class="seal">合同专用章</span></td></tr></table></body></html>')


def _render(tmp_path, font, header="合同编号 T-1") -> bytes:
    return render_pdf(HTML, static_roots=[tmp_path], title="t", header_text=header, font_path=font)


def test_the_font_is_set_up_once_per_thread_and_again_when_the_font_changes(tmp_path):
    font = find_cjk_font()
    fetcher = pdfmod.RestrictedURLFetcher([tmp_path], extra_files=[font])
    first = pdfmod.font_setup(font, fetcher)
    assert pdfmod.font_setup(font, fetcher)[0] is first[0]

    copy = tmp_path / f"copy{font.suffix}"
    shutil.copyfile(font, copy)
    other = pdfmod.font_setup(copy, pdfmod.RestrictedURLFetcher([tmp_path], extra_files=[copy]))
    assert other[0] is not first[0]  # another font file: another configuration
    again = pdfmod.font_setup(copy, fetcher)
    assert again[0] is other[0]
    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # the same path, replaced
    assert pdfmod.font_setup(copy, fetcher)[0] is not other[0]

    seen = []
    thread = threading.Thread(target=lambda: seen.append(pdfmod.font_setup(font, fetcher)[0]))
    thread.start()
    thread.join()
    assert seen[0] is not pdfmod.font_setup(font, fetcher)[0]  # Pango font maps are not shared between threads


def test_renders_with_the_cached_font_are_identical_and_carry_the_font_they_were_given(tmp_path):
    font = find_cjk_font()
    first = _render(tmp_path, font)
    assert _render(tmp_path, font) == first  # same HTML and font: the same bytes, cache or not
    other_header = _render(tmp_path, font, header="合同编号 T-2")
    assert other_header != first and "T-2" in pdf_text(other_header)  # the page CSS is made for every render

    copy = tmp_path / f"moved{font.suffix}"
    shutil.copyfile(font, copy)
    moved = _render(tmp_path, copy)
    assert "借款合同" in pdf_text(moved)
    # The font is subsetted: only the glyphs used are embedded, far below the font file's size.
    assert len(moved) < font.stat().st_size / 10


def test_one_reading_gives_the_places_the_separate_searches_give(tmp_path):
    pdf = _render(tmp_path, find_cjk_font())
    places = signature_places(pdf)
    seal, signature = seal_box(pdf), signature_box(pdf)
    assert seal is not None and signature is not None
    assert places == {"seal": [seal[0], list(seal[1])], "signature": [signature[0], list(signature[1])]}
    assert signature_places(b"not a pdf") == {"seal": None, "signature": None}


def test_the_renderer_says_where_the_marks_are_drawn_as_the_file_says(tmp_path):
    """render_pdf_marked's positions of the signature block's marks, turned into places, are the places reading the
    written file gives; the bytes are render_pdf's."""
    from contracts.pdf import render_pdf_marked
    from contracts.seal import PLACE_MARKS, places_from_layout

    data, marks = render_pdf_marked(HTML, static_roots=[tmp_path], title="t", header_text="合同编号 T-1",
                                    font_path=find_cjk_font(), marks=PLACE_MARKS)
    assert data == _render(tmp_path, find_cjk_font())
    assert set(marks) == set(PLACE_MARKS)
    assert places_from_layout(marks) == signature_places(data)
    assert places_from_layout({}) == {"seal": None, "signature": None}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["loan", "guarantee", "mortgage", "credit_line"])
def test_every_seeded_contract_keeps_the_places_of_its_layout_under_its_hash(products, org, kind):
    """Rendering a contract keeps its signature block's places (from the layout) under the bytes' SHA-256, and they
    are exactly what reading the file finds: signing never has to read it."""
    import datetime as dt

    from django.core.cache import cache

    from contracts.models import ContractTemplate
    from contracts.pdf import pdf_sha256
    from contracts.services import _places_key, contract_render, contract_terms, credit_line_terms
    from tests.factories import ApplicationFactory

    application = ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=33)
    start = dt.date(2027, 1, 4)
    terms = contract_terms(application, start_date=start, kind="loan" if kind == "credit_line" else kind, number="LS-T-1")
    if kind == "credit_line":
        terms["credit_line"] = credit_line_terms(application, start_date=start)
    template = ContractTemplate.objects.filter(kind=kind, is_active=True).latest("version")
    cache.clear()
    data = contract_render(template=template, number="LS-T-1", terms=terms)
    places = cache.get(_places_key(pdf_sha256(data)))
    assert places["seal"] and places["signature"]
    assert places == signature_places(data)


@pytest.mark.django_db
def test_contract_places_are_cached_under_the_issued_files_hash(products, org):
    from django.core.cache import cache

    from contracts.services import _places_key, contract_places
    from tests.contracts_support import accept, contracts_of
    from tests.factories import ApplicationFactory, owner_view

    pk, _owner, client = owner_view(ApplicationFactory(approver=org["demo_branch_approver"], stage="approved", seed=31))
    accept(client, pk)
    contract = contracts_of(pk)[0]
    data = contract.pdf.open("rb").read()
    expected = signature_places(data)
    assert expected["seal"] and expected["signature"]
    assert contract_places(contract) == expected  # kept when the contract was rendered
    assert cache.get(_places_key(contract.sha256)) == expected

    cache.delete(_places_key(contract.sha256))
    wrong = {"seal": None, "signature": None}
    cache.set(_places_key("0" * 64), wrong)  # another file's entry is not this one's
    assert contract_places(contract, data) == expected

    # A stored file that no longer matches its recorded hash is read, but its places are not kept.
    cache.delete(_places_key(contract.sha256))
    path = contract.pdf.path
    with open(path, "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 1]))
    contract_places(contract)
    assert cache.get(_places_key(contract.sha256)) is None


@pytest.mark.django_db
def test_signing_with_cached_places_puts_both_signatures_where_the_file_says(products, org):
    """The enterprise's signature and the bank's seal with the places from the cache: the same fields on the same
    pages and boxes as found by reading the file, both valid against their trust roots."""
    from pypdf import PdfReader

    from contracts.selectors import contract_pdf_signatures
    from tests.contracts_support import contracts_of, signed_case

    pk, _owner, _client, _anchor = signed_case(org, seed=32)
    for contract in contracts_of(pk):
        issued = contract.pdf.open("rb").read()
        places = signature_places(issued)
        report = contract_pdf_signatures(contract)
        assert report["ok"] and [s["field"] for s in report["signatures"]] == ["BorrowerSignature", "BankSeal"]
        reader = PdfReader(io.BytesIO(contract.signed_pdf.open("rb").read()))
        rects = {}
        for index, page in enumerate(reader.pages):
            for annot in page.get("/Annots") or []:
                annot = annot.get_object()
                if annot.get("/FT") == "/Sig" or annot.get("/Subtype") == "/Widget":
                    rects[str(annot.get("/T"))] = (index, [round(float(v), 2) for v in annot["/Rect"]])
        assert rects["BorrowerSignature"] == (places["signature"][0], places["signature"][1])
        assert rects["BankSeal"] == (places["seal"][0], places["seal"][1])
