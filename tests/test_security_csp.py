"""Content-Security-Policy (django-csp; docs/security.md): the header on pages, the API docs and the admin, and no
template with an inline script or an inline event handler (they would be refused in the browser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I | re.S)


def template_files() -> list[Path]:
    dirs = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    dirs += [p for p in ROOT.glob("*/templates") if ".venv" not in p.parts]
    return sorted({f for d in dirs for f in d.rglob("*.html")})


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part}


def test_the_templates_are_found():
    assert len(template_files()) > 40


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_an_inline_script_or_handler(path):
    text = path.read_text()
    for m in SCRIPT_TAG.finditer(text):
        attrs = m.group(1)
        assert "src=" in attrs or re.search(r'type\s*=\s*"application/(ld\+)?json"', attrs), (
            f"inline <script> in {path.name}: move it to static/js (data in a JSON block or data- attributes)")
    assert not HANDLER.search(text), f"inline event handler (on…=) in {path.name}: use addEventListener in static/js"
    assert "javascript:" not in text.lower(), f"javascript: URL in {path.name}"


def test_a_page_carries_the_policy(client, db):
    header = client.get("/products/")["Content-Security-Policy"]
    d = _directives(header)
    assert d["script-src"] == ["'self'"]
    assert d["default-src"] == ["'self'"] and d["object-src"] == ["'none'"] and d["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" in d["style-src"]


def test_a_staff_page_and_the_api_docs_carry_it(users, client):
    client.force_login(users["demo_risk"])
    assert "script-src 'self'" in client.get("/staff/risk/")["Content-Security-Policy"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "Content-Security-Policy" in docs
    html = docs.content.decode()
    assert not [m for m in SCRIPT_TAG.finditer(html) if "src=" not in m.group(1)]  # the split view: no inline start-up
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_the_admin_allows_unfolds_alpine_but_no_inline_script(users, client):
    client.force_login(users["demo_admin"])
    r = client.get("/admin/")
    assert r.status_code == 200
    d = _directives(r["Content-Security-Policy"])
    assert set(d["script-src"]) == {"'self'", "'unsafe-eval'"}
