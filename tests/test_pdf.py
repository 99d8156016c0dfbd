"""Contract PDF rendering: CJK text, embedded font, A4, header/footer, restricted fetcher."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from contracts import pdf as pdfmod
from contracts.pdf import (
    FontMissing,
    ResourceBlocked,
    RestrictedURLFetcher,
    find_cjk_font,
    pdf_sha256,
    pdf_text,
    render_pdf,
)

CONTRACT_NO = "HT-2025-000123"
HEADER = f"合同编号：{CONTRACT_NO}"

# 1x1 transparent PNG
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def contract_html(sections: int = 3, extra_body: str = "", clauses: int = 10) -> str:
    """A contract of ``sections`` pages: each section starts on a new page."""
    parts = []
    for s in range(1, sections + 1):
        items = "".join(
            f"<p>第{s}.{i}条 借款人应于每月二十日前按期归还借款本金人民币叁拾万元整（¥300,000.00）"
            f"及按年利率 4.35% 计算的利息，逾期按日万分之五计收罚息。</p>"
            for i in range(1, clauses + 1)
        )
        style = ' style="break-before: page"' if s > 1 else ""
        parts.append(f"<section{style}><h2>第{s}章</h2>{items}</section>")
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>借款合同</title></head>'
        f"<body><h1>借款合同</h1><p>借款金额：人民币叁拾万元整</p>{extra_body}{''.join(parts)}"
        "<p>贷款人（盖章）：某某银行股份有限公司</p></body></html>"
    )


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    (root / "img").mkdir()
    (root / "img" / "logo.png").write_bytes(PNG_1PX)
    (root / "contract.css").write_text("h1 { text-align: center; }", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def font() -> Path:
    return find_cjk_font()


@pytest.fixture(scope="module")
def contract_pdf(static_root, font) -> bytes:
    return render_pdf(
        contract_html(),
        static_roots=[static_root],
        title="借款合同",
        header_text=HEADER,
        font_path=font,
    )


def render(html: str, static_root: Path, font: Path, **kw) -> bytes:
    return render_pdf(html, static_roots=[static_root], title="t", header_text=HEADER, font_path=font, **kw)


# --------------------------------------------------------------------------- fonts


def test_find_cjk_font_default_exists(font):
    assert font.is_file()


def test_find_cjk_font_env_override(monkeypatch, font):
    monkeypatch.setenv("LOANSERVICE_CJK_FONT", str(font))
    assert find_cjk_font() == font
    monkeypatch.setenv("LOANSERVICE_CJK_FONT", "/nonexistent/font.ttf")
    with pytest.raises(FontMissing, match="LOANSERVICE_CJK_FONT"):
        find_cjk_font()


def test_find_cjk_font_missing_explains_install(monkeypatch):
    monkeypatch.delenv("LOANSERVICE_CJK_FONT", raising=False)
    monkeypatch.setattr(pdfmod, "KNOWN_CJK_FONTS", ())
    monkeypatch.setattr(pdfmod, "_fc_match_cjk", lambda: None)
    with pytest.raises(FontMissing, match="apt-get install fonts-wqy-microhei"):
        find_cjk_font()


# --------------------------------------------------------------------------- content


def test_chinese_text_is_extractable(contract_pdf):
    text = pdf_text(contract_pdf)
    assert "借款合同" in text
    assert "人民币叁拾万元整" in text
    assert "某某银行股份有限公司" in text


def test_a4_and_three_pages(contract_pdf):
    reader = PdfReader(io.BytesIO(contract_pdf))
    assert len(reader.pages) == 3
    for page in reader.pages:
        box = page.mediabox
        assert float(box.width) == pytest.approx(595.28, abs=0.5)  # 210 mm
        assert float(box.height) == pytest.approx(841.89, abs=0.5)  # 297 mm


def test_page_numbers_and_header(contract_pdf):
    reader = PdfReader(io.BytesIO(contract_pdf))
    total = len(reader.pages)
    for n, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"第 {n} 页 / 共 {total} 页" in text
        assert HEADER in text


def test_title_metadata_and_no_creation_date(contract_pdf):
    meta = PdfReader(io.BytesIO(contract_pdf)).metadata
    assert meta.title == "借款合同"
    assert "/CreationDate" not in meta


def test_cjk_font_embedded_and_subsetted(contract_pdf):
    reader = PdfReader(io.BytesIO(contract_pdf))
    seen = 0
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            assert font["/Subtype"] == "/Type0"  # CID font: CJK glyphs addressable
            base = str(font["/BaseFont"])
            prefix, _, family = base.lstrip("/").partition("+")
            assert len(prefix) == 6 and prefix.isupper(), base  # subset tag
            assert family.startswith(pdfmod.FONT_FAMILY), base
            descendant = font["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            font_file = descriptor.get("/FontFile2") or descriptor.get("/FontFile3")
            assert font_file is not None, f"{base} is not embedded"
            assert len(font_file.get_object().get_data()) > 1000
            seen += 1
    assert seen >= 1


def test_render_is_deterministic(static_root, font, contract_pdf):
    again = render_pdf(
        contract_html(), static_roots=[static_root], title="借款合同", header_text=HEADER, font_path=font
    )
    assert pdf_sha256(again) == pdf_sha256(contract_pdf)


def test_fixed_creation_date(static_root, font):
    from datetime import UTC, datetime

    data = render(contract_html(1), static_root, font, created=datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    assert PdfReader(io.BytesIO(data)).metadata["/CreationDate"].startswith("D:20250301080000")


def test_header_text_is_css_escaped(static_root, font):
    nasty = '"; } @page { size: A3; } x { content: "'
    data = render_pdf(
        contract_html(1), static_roots=[static_root], title="t", header_text=nasty, font_path=font
    )
    reader = PdfReader(io.BytesIO(data))
    assert float(reader.pages[0].mediabox.height) == pytest.approx(841.89, abs=0.5)
    assert "@page" in reader.pages[0].extract_text()


def test_pdf_sha256():
    assert pdf_sha256(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_render_time_three_pages(static_root, font, capsys):
    html = contract_html()
    render_pdf(html, static_roots=[static_root], title="借款合同", header_text=HEADER, font_path=font)  # warm
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        data = render_pdf(
            html, static_roots=[static_root], title="借款合同", header_text=HEADER, font_path=font
        )
        timings.append(time.perf_counter() - start)
    assert len(PdfReader(io.BytesIO(data)).pages) == 3
    with capsys.disabled():
        print(
            f"\n[pdf] 3-page contract render: best {min(timings):.3f}s, worst {max(timings):.3f}s (target < 0.5s)"
        )


# --------------------------------------------------------------------------- fetcher


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/logo.png",
        "https://example.com/logo.png",
        "ftp://example.com/logo.png",
        "file:///etc/passwd",
        "file://remotehost/etc/passwd",
        "gopher://example.com/",
    ],
)
def test_fetcher_refuses(url, static_root):
    fetcher = RestrictedURLFetcher([static_root])
    with pytest.raises(ResourceBlocked):
        fetcher.fetch(url)


def test_fetcher_refuses_dotdot_escapes(static_root):
    fetcher = RestrictedURLFetcher([static_root])
    depth = "/..".join([""] * (len(static_root.parts) + 1))
    for url in (
        f"{static_root.as_uri()}/../../../../etc/passwd",
        f"{static_root.as_uri()}/img/..{depth}/etc/passwd",
        f"{static_root.as_uri()}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ):
        with pytest.raises(ResourceBlocked):
            fetcher.fetch(url)


def test_fetcher_refuses_symlink_escape(static_root, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = static_root / "link.txt"
    link.symlink_to(secret)
    try:
        with pytest.raises(ResourceBlocked):
            RestrictedURLFetcher([static_root]).fetch(link.as_uri())
    finally:
        link.unlink()


def test_fetcher_allows_static_file_and_data_uri(static_root):
    fetcher = RestrictedURLFetcher([static_root])
    resp = fetcher.fetch((static_root / "img" / "logo.png").as_uri())
    assert resp.read() == PNG_1PX
    assert resp.content_type == "image/png"
    resp = fetcher.fetch(f"{static_root.as_uri()}/img/../contract.css")
    assert b"text-align" in resp.read()
    resp = fetcher.fetch("data:text/plain;base64,5YCf5qy+")
    assert resp.read().decode() == "借款"


def test_fetcher_allows_font_file(font, static_root):
    assert RestrictedURLFetcher([static_root], [font]).fetch(font.as_uri()).read()[:4]
    with pytest.raises(ResourceBlocked):
        RestrictedURLFetcher([static_root]).fetch(font.as_uri())


def test_render_with_static_image_and_css(static_root, font):
    extra = '<link rel="stylesheet" href="contract.css"><img src="img/logo.png" alt="logo">'
    data = render(contract_html(1, extra), static_root, font)
    assert "借款合同" in pdf_text(data)
    # The image really made it into the PDF as an XObject.
    page = PdfReader(io.BytesIO(data)).pages[0]
    xobjects = page["/Resources"].get("/XObject", {})
    assert any(x.get_object()["/Subtype"] == "/Image" for x in xobjects.values())


@pytest.mark.parametrize(
    "tag",
    [
        '<img src="http://127.0.0.1:9/logo.png">',
        '<img src="https://example.com/logo.png">',
        '<img src="file:///etc/passwd">',
        '<img src="../../../../../../etc/passwd">',
        '<link rel="stylesheet" href="http://127.0.0.1:9/x.css">',
        "<style>@import url('https://example.com/x.css');</style>",
    ],
)
def test_render_refuses_blocked_resources(tag, static_root, font):
    with pytest.raises(ResourceBlocked):
        render(contract_html(1, tag), static_root, font)


def test_render_non_strict_skips_blocked_resource(static_root, font):
    data = render(
        contract_html(1, '<img src="http://127.0.0.1:9/logo.png">'), static_root, font, strict=False
    )
    assert "借款合同" in pdf_text(data)
