"""Contract PDF rendering (WeasyPrint) with an embedded CJK font.

No Django import at module level: every setting is an explicit parameter.

* :func:`find_cjk_font` locates a font file that covers Simplified Chinese.
* :func:`render_pdf` turns contract HTML into an A4 PDF with the contract number
  in the page header, "第 N 页 / 共 M 页" in the footer and the CJK font embedded
  (subsetted; the font is registered once per thread and font file, :func:`font_setup`).  Resources are loaded through :class:`RestrictedURLFetcher`, which
  only serves ``data:`` URIs and files inside the given static roots (plus the
  font file itself): no network, no arbitrary files.
* :func:`render_pdf_marked` renders the same and also says where given texts were drawn (the signature
  block's marks, contracts.seal), from the layout: no reading of the written file.
* :func:`pdf_sha256` / :func:`pdf_text` are small helpers (the latter uses pypdf).

Determinism: WeasyPrint writes no ``/CreationDate``, ``/ModDate`` or ``/ID`` unless
asked, and font subset tags are derived from the glyph set, so the same HTML,
font and static files render to byte-identical PDFs (checked in the tests).
Pass ``created=`` to stamp a fixed creation date; it is rendered deterministically.
"""

from __future__ import annotations

import atexit
import hashlib
import io
import mimetypes
import os
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "FontMissing",
    "PdfRenderError",
    "ResourceBlocked",
    "RestrictedURLFetcher",
    "find_cjk_font",
    "font_setup",
    "pdf_sha256",
    "pdf_text",
    "render_pdf",
    "render_pdf_marked",
]

FONT_ENV_VAR = "LOANSERVICE_CJK_FONT"

#: Debian locations, best first.  wqy-microhei is what ``make run`` installs.
KNOWN_CJK_FONTS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),  # fonts-noto-cjk(-extra), SC subset
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),  # fonts-noto-cjk
    Path("/usr/share/fonts/opentype/source-han-sans/SourceHanSansSC-Regular.otf"),
    Path("/usr/share/fonts/opentype/adobe-source-han-sans/SourceHanSansSC-Regular.otf"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
)

#: CSS family name the base stylesheet gives to the embedded CJK font.
FONT_FAMILY = "LoanserviceCJK"


class FontMissing(RuntimeError):
    """No font covering Simplified Chinese could be found."""


class PdfRenderError(RuntimeError):
    """The PDF could not be rendered (e.g. a resource failed to load)."""


class ResourceBlocked(PdfRenderError, ValueError):
    """A template asked for a URL the restricted fetcher does not serve."""


# --------------------------------------------------------------------------- fonts


def _fc_match_cjk() -> Path | None:
    """Ask fontconfig for a sans-serif font for zh-cn; only accept it if it covers zh-cn."""
    fc_match = shutil.which("fc-match")
    if not fc_match:
        return None
    try:
        out = subprocess.run(
            [fc_match, "-f", "%{file}\n%{lang}", "sans-serif:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    file_line, _, langs = out.partition("\n")
    if not file_line:
        return None
    # fc-match always returns *something* (DejaVu when no CJK font is installed):
    # accept the match only if fontconfig says it supports Simplified Chinese.
    if "zh-cn" not in langs.split("|"):
        return None
    path = Path(file_line)
    return path if path.is_file() else None


def find_cjk_font() -> Path:
    """Return the path of a font file that covers Simplified Chinese.

    Looks at, in order: ``$LOANSERVICE_CJK_FONT``, known Debian paths
    (:data:`KNOWN_CJK_FONTS`), then ``fc-match 'sans-serif:lang=zh-cn'``.
    Raises :class:`FontMissing` with install instructions otherwise.
    """
    env = os.environ.get(FONT_ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FontMissing(
                f"{FONT_ENV_VAR}={env!r} does not point to a font file. "
                "Unset it to use the system CJK font, or fix the path."
            )
        return path
    for path in KNOWN_CJK_FONTS:
        if path.is_file():
            return path
    found = _fc_match_cjk()
    if found is not None:
        return found
    raise FontMissing(
        "No Chinese (CJK) font found: contract PDFs would show empty boxes instead of "
        "Chinese text. Install one with `apt-get install fonts-wqy-microhei` (as root; "
        "`make run` does this for you), or set "
        f"{FONT_ENV_VAR}=/path/to/a/cjk-font.ttf (.ttc/.otf also work)."
    )


# --------------------------------------------------------------------------- fetcher


def _import_weasyprint():
    try:
        import weasyprint  # noqa: PLC0415 - heavy import, only when rendering
    except ImportError as exc:  # pragma: no cover - dependency is in pyproject
        raise PdfRenderError(f"WeasyPrint is not importable: {exc}") from exc
    return weasyprint


def _make_fetcher_class():
    """Build the fetcher class lazily so that importing this module stays cheap."""
    weasyprint = _import_weasyprint()
    from weasyprint.urls import URLFetcherResponse  # noqa: PLC0415

    class _RestrictedURLFetcher(weasyprint.URLFetcher):
        """WeasyPrint URL fetcher that serves only ``data:`` URIs and allowed files.

        ``file:`` URLs are resolved (``..`` collapsed, symlinks followed) and
        served only when the real path lies inside one of ``static_roots`` or is
        one of ``extra_files``.  Every other URL — http, https, ftp, other files,
        escapes — raises :class:`ResourceBlocked`.
        """

        def __init__(
            self,
            static_roots: Iterable[Path],
            extra_files: Iterable[Path] = (),
            *,
            fail_on_errors: bool = True,
        ) -> None:
            super().__init__(timeout=1, allowed_protocols=("data", "file"), fail_on_errors=fail_on_errors)
            # Drop urllib's handlers entirely: nothing may go through them.
            self.handlers = []
            self.handle_open = {}
            self.handle_error = {}
            self.process_request = {}
            self.process_response = {}
            self.roots = tuple(Path(r).resolve() for r in static_roots)
            self.extra_files = frozenset(Path(f).resolve() for f in extra_files)

        def allowed_path(self, url: str) -> Path:
            """Return the resolved file path for an allowed ``file:`` URL, else raise."""
            parts = urllib.parse.urlsplit(url)
            if parts.scheme.lower() != "file":
                raise ResourceBlocked(f"URL scheme not allowed in contract templates: {url}")
            if parts.netloc not in ("", "localhost"):
                raise ResourceBlocked(f"Remote file URL not allowed: {url}")
            raw = urllib.request.url2pathname(parts.path)
            if "\x00" in raw:
                raise ResourceBlocked(f"Invalid file URL: {url}")
            try:
                path = Path(raw).resolve()  # collapses "..", follows symlinks
            except (OSError, RuntimeError) as exc:
                raise ResourceBlocked(f"Invalid file URL: {url}") from exc
            if not (path in self.extra_files or any(path.is_relative_to(root) for root in self.roots)):
                raise ResourceBlocked(f"File outside the allowed static roots: {url}")
            if not path.is_file():
                raise ResourceBlocked(f"File not found (or not a regular file): {url}")
            return path

        def fetch(self, url, headers=None):
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme == "data":
                response = urllib.request.DataHandler().data_open(urllib.request.Request(url))
                return URLFetcherResponse(url, response.read(), dict(response.headers.items()))
            if scheme == "file":
                path = self.allowed_path(url)
                mime, _ = mimetypes.guess_type(path.name)
                headers_out = {"Content-Type": mime or "application/octet-stream"}
                return URLFetcherResponse(path.as_uri(), path.read_bytes(), headers_out)
            raise ResourceBlocked(f"URL not allowed in contract templates (no network access): {url}")

    return _RestrictedURLFetcher


_FETCHER_CLASS = None


def RestrictedURLFetcher(  # noqa: N802 - behaves like a class constructor
    static_roots: Iterable[Path], extra_files: Iterable[Path] = (), *, fail_on_errors: bool = True
):
    """Create the restricted WeasyPrint URL fetcher (see module docstring).

    ``fetcher.fetch(url)`` returns a WeasyPrint ``URLFetcherResponse`` for an
    allowed URL and raises :class:`ResourceBlocked` otherwise.
    """
    global _FETCHER_CLASS
    if _FETCHER_CLASS is None:
        _FETCHER_CLASS = _make_fetcher_class()
    return _FETCHER_CLASS(static_roots, extra_files, fail_on_errors=fail_on_errors)


# --------------------------------------------------------------------------- rendering


def _css_string(text: str) -> str:
    """Quote ``text`` as a CSS string literal; everything but safe ASCII is hex-escaped."""
    out = []
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch in " -_.:/#()[],"):
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):06x}")
    return '"' + "".join(out) + '"'


def font_stylesheet(font_path: Path) -> str:
    """The CSS that embeds the CJK font and makes it the document's: the same for every render with this font.

    The font is registered in one weight, and WeasyPrint draws no synthetic bold: a bold heading looks exactly like
    regular text, yet would embed a second subset of the whole font file (~15 ms of the render, issue #20). So
    everything is set in the one weight there is."""
    return f"""
@font-face {{
  font-family: "{FONT_FAMILY}";
  src: url("{font_path.resolve().as_uri()}");
}}
html {{
  font-family: "{FONT_FAMILY}", sans-serif;
  font-size: 11pt;
  line-height: 1.6;
}}
h1, h2, h3, h4, h5, h6, th, b, strong {{ font-weight: normal; }}
"""


def page_stylesheet(header_text: str) -> str:
    """A4 pages with ``header_text`` in the header and the page-number footer."""
    return f"""
@page {{
  size: A4;
  margin: 22mm 18mm 20mm 18mm;
  @top-right {{
    content: {_css_string(header_text)};
    font-family: "{FONT_FAMILY}", sans-serif;
    font-size: 9pt;
    color: #555;
    vertical-align: bottom;
    padding-bottom: 3mm;
  }}
  @bottom-center {{
    content: "第 " counter(page) " 页 / 共 " counter(pages) " 页";
    font-family: "{FONT_FAMILY}", sans-serif;
    font-size: 9pt;
    color: #555;
  }}
}}
"""


def base_stylesheet(font_path: Path, header_text: str) -> str:
    """The base CSS: A4 pages, embedded CJK font, header and page-number footer."""
    return font_stylesheet(font_path) + page_stylesheet(header_text)


# One font setup per thread (WeasyPrint's FontConfiguration wraps a Pango font map, which is not thread-safe):
# registering the font copies the whole file (MBs for a CJK font) into a temporary folder and has fontconfig scan
# it, and a fresh font map starts with cold glyph and shaping caches. Keyed by the font file's resolved path, size
# and modification time, so another font (or the same path replaced) gets a new configuration.
_FONTS = threading.local()
# Dropped before interpreter shutdown: WeasyPrint removes the font's temporary folder in __del__, which fails
# noisily once module globals are gone.
atexit.register(lambda: _FONTS.__dict__.pop("setup", None))


def _font_key(font: Path) -> tuple:
    st = font.stat()
    return str(font.resolve()), st.st_size, st.st_mtime_ns


def font_setup(font: Path, fetcher):
    """(FontConfiguration, font stylesheet) for ``font``, made once per thread and font file."""
    weasyprint = _import_weasyprint()
    from weasyprint.text.fonts import FontConfiguration  # noqa: PLC0415

    key = _font_key(font)
    cached = getattr(_FONTS, "setup", None)
    if cached is None or cached[0] != key:
        font_config = FontConfiguration()
        stylesheet = weasyprint.CSS(string=font_stylesheet(font), font_config=font_config, url_fetcher=fetcher)
        cached = _FONTS.setup = (key, font_config, stylesheet)
    return cached[1], cached[2]


def _pdf_date(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pdf_number(value: float) -> float:
    """``value`` as pydyf writes it into the content stream (six decimals)."""
    return float(f"{value:f}")


def _text_marks(document, marks: Sequence[str]) -> dict[str, tuple]:
    """Where each of ``marks`` is last drawn in the laid-out ``document``: {mark: (page index, (x, y, size),
    (page width, page height))} in PDF points, (x, y) the origin of the line of text that holds it and size its
    font size, as a reader of the file's content stream finds them (contracts.seal reads them that way): WeasyPrint
    draws each text box as one run at (position_x, position_y + baseline) in CSS pixels, under a 0.75 scale and a
    flipped y axis, with the font size Pango rounded down to 1/1024 px."""
    from weasyprint.formatting_structure import boxes  # noqa: PLC0415

    found: dict[str, tuple] = {}

    def walk(box):
        yield box
        for child in getattr(box, "children", None) or ():
            yield from walk(child)

    for index, page in enumerate(document.pages):
        width, height = _pdf_number(page.width * 0.75), _pdf_number(page.height * 0.75)
        for box in walk(page._page_box):
            if not isinstance(box, boxes.TextBox):
                continue
            squeezed = box.text.replace(" ", "")
            for mark in marks:
                if mark in squeezed:
                    x = 0.75 * _pdf_number(box.position_x)
                    y = height - 0.75 * _pdf_number(box.position_y + box.baseline)
                    size = _pdf_number(int(box.style["font_size"] * 1024) / 1024) * 0.75
                    found[mark] = (index, (x, y, size), (width, height))
    return found


def render_pdf(html: str, **kwargs) -> bytes:
    """Render contract HTML to PDF bytes (:func:`render_pdf_marked` without marks)."""
    return render_pdf_marked(html, **kwargs)[0]


def render_pdf_marked(
    html: str,
    *,
    static_roots: Sequence[Path],
    title: str,
    header_text: str,
    font_path: Path | None = None,
    created: datetime | None = None,
    strict: bool = True,
    marks: Sequence[str] = (),
) -> tuple[bytes, dict[str, tuple]]:
    """Render contract HTML to PDF bytes, and say where ``marks`` (texts such as the seal's 合同专用章) were drawn
    (:func:`_text_marks`; read from the layout, not from the written file).

    :param html: the full HTML document (UTF-8 text).  Relative URLs resolve
        against the first static root.  Put ``lang="zh-CN"`` on ``<html>``.
    :param static_roots: directories the template may load images/CSS from.
    :param title: PDF ``/Title`` metadata.
    :param header_text: printed in the top-right page header (the contract number).
    :param font_path: CJK font file; :func:`find_cjk_font` when ``None``.
    :param created: optional fixed ``/CreationDate``; none is written by default.
    :param strict: when true (default) any blocked or missing resource aborts the
        render with :class:`ResourceBlocked` / :class:`PdfRenderError`; when false
        such resources are skipped (WeasyPrint logs a warning).
    """
    weasyprint = _import_weasyprint()
    from weasyprint.urls import FatalURLFetchingError  # noqa: PLC0415

    font = Path(font_path) if font_path is not None else find_cjk_font()
    if not font.is_file():
        raise FontMissing(f"CJK font file not found: {font}")
    roots = [Path(r) for r in static_roots]
    fetcher = RestrictedURLFetcher(roots, extra_files=[font], fail_on_errors=strict)
    base_url = roots[0].resolve().as_uri() + "/" if roots else None

    try:
        font_config, font_css = font_setup(font, fetcher)
        page_css = weasyprint.CSS(string=page_stylesheet(header_text), font_config=font_config, url_fetcher=fetcher)
        document = weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher).render(
            stylesheets=[font_css, page_css], font_config=font_config
        )
        document.metadata.title = title
        if created is not None:
            document.metadata.created = _pdf_date(created)
        return document.write_pdf(), _text_marks(document, marks) if marks else {}
    except FatalURLFetchingError as exc:
        # BaseException in WeasyPrint: turn it into a normal exception so that
        # Django/Celery error handling sees it.
        cause = exc.__cause__
        if isinstance(cause, ResourceBlocked):
            raise ResourceBlocked(str(cause)) from cause
        raise PdfRenderError(f"{exc}: {cause}") from cause


# --------------------------------------------------------------------------- helpers


def pdf_sha256(data: bytes) -> str:
    """Hex SHA-256 of the PDF bytes (what the contract record stores)."""
    return hashlib.sha256(data).hexdigest()


def pdf_text(data: bytes) -> str:
    """Extract the text of every page (pypdf), pages separated by form feeds."""
    from pypdf import PdfReader  # noqa: PLC0415

    reader = PdfReader(io.BytesIO(data))
    return "\f".join(page.extract_text() or "" for page in reader.pages)
