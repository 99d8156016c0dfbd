"""The visible bank seal on a sealed contract: where it goes and what it looks like.

No Django import.  :func:`seal_image` draws the round red 合同专用章 (the bank's name
around the ring, a star and 合同专用章 in the centre) with Pillow and the project's
CJK font (:func:`contracts.pdf.find_cjk_font`); it is drawn once per name and kept in
memory and as a PNG in the cache directory, never fetched.  :func:`seal_box` finds
the seal's place in the contract's signature block (the ``.seal`` circle the
templates draw, recognised by its 合同专用章 text), searching from the last page back;
:func:`signature_places` finds it and the customer's signing line in one reading of the file;
:func:`places_from_layout` gives the same from where the renderer drew them (no reading at all).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path

__all__ = ["PLACE_MARKS", "SEAL_MARK", "SEAL_SIZE_PT", "SIGNATURE_MARK", "places_from_layout", "seal_box", "seal_image",
           "signature_box", "signature_image", "signature_places"]

#: The text inside the templates' seal circle (templates/contracts/*.html, class "seal").
SEAL_MARK = "合同专用章"
#: The circle is 34 mm across (CONTRACT_CSS ``.seal``); 合同专用章 is its middle line.
SEAL_SIZE_PT = 34 / 25.4 * 72
RED = (200, 24, 24, 255)
#: The customer's column of the signature block says 借款人（电子签名）/ 抵押人（电子签名）: the enterprise's signature goes there.
SIGNATURE_MARK = "（电子签名）"
#: The enterprise's signature stamp: 50 mm × 15 mm.
SIGNATURE_SIZE_PT = (50 / 25.4 * 72, 15 / 25.4 * 72)
BLUE = (22, 60, 160, 255)
_PX = 600  # the image is drawn at 600 px for ~34 mm: ~450 dpi


def _cache_dir() -> Path:
    return Path(os.environ.get("LOANSERVICE_SEAL_CACHE") or Path(tempfile.gettempdir()) / "loanservice-seal")


def _draw(name: str, font_path: Path):
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    img = Image.new("RGBA", (_PX, _PX), (255, 255, 255, 0))
    d = ImageDraw.Draw(img)
    c = _PX / 2
    ring = 18
    # White inside the ring: it covers the template's placeholder circle and its text.
    d.ellipse((ring / 2, ring / 2, _PX - ring / 2, _PX - ring / 2), fill=(255, 255, 255, 255), outline=RED, width=ring)
    # Five-pointed star in the centre.
    r_out, r_in, cy = 70, 27, c - 15
    pts = []
    for i in range(10):
        r = r_out if i % 2 == 0 else r_in
        a = -math.pi / 2 + i * math.pi / 5
        pts.append((c + r * math.cos(a), cy + r * math.sin(a)))
    d.polygon(pts, fill=RED)
    # 合同专用章 across the centre, under the star.
    mid = ImageFont.truetype(str(font_path), 56)
    d.text((c, c + 120), SEAL_MARK, font=mid, fill=RED, anchor="mm")
    # The bank's name along the upper arc, each character upright towards the centre.
    chars = list(name)[:20]
    if chars:
        size = 74 if len(chars) <= 10 else max(44, int(74 * 10 / len(chars)))
        font = ImageFont.truetype(str(font_path), size)
        radius = c - ring - 14 - size / 2
        span = min(200.0, 20.0 * len(chars) + 20) if len(chars) > 1 else 0.0  # clear of 合同专用章 below
        for i, ch in enumerate(chars):
            ang = -span / 2 + (span * i / (len(chars) - 1) if len(chars) > 1 else 0)  # degrees from the top
            glyph = Image.new("RGBA", (size * 2, size * 2), (255, 255, 255, 0))
            ImageDraw.Draw(glyph).text((size, size), ch, font=font, fill=RED, anchor="mm")
            glyph = glyph.rotate(-ang, resample=Image.BICUBIC)
            rad = math.radians(ang)
            x, y = c + radius * math.sin(rad), c - radius * math.cos(rad)
            img.alpha_composite(glyph, (int(x - size), int(y - size)))
    return img


def _private(directory: Path) -> bool:
    """Only a cache directory of our own that nobody else can write to is trusted (the temp dir is shared)."""
    try:
        st = directory.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


@lru_cache(maxsize=8)
def seal_image(name: str, font_path: str | None = None):
    """The seal for ``name`` as a Pillow RGBA image (transparent outside the ink).

    Drawn once per name and font and cached: in memory and as a PNG in
    ``$LOANSERVICE_SEAL_CACHE`` (default: ``loanservice-seal`` in the temp dir, made 0700;
    a directory that is not ours or that others can write to is not used), so the
    worker does not redraw it for every contract.
    """
    from PIL import Image  # noqa: PLC0415

    from .pdf import find_cjk_font  # noqa: PLC0415

    font = Path(font_path) if font_path else find_cjk_font()
    key = hashlib.sha256(f"v2|{name}|{font}|{_PX}".encode()).hexdigest()[:24]
    path = _cache_dir() / f"seal-{key}.png"
    if path.is_file() and _private(path.parent):
        try:
            with Image.open(path) as im:
                return im.convert("RGBA")
        except OSError:
            pass  # a damaged cache file: draw it again
    img = _draw(name, font)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(path.parent):
            return img
        buf = io.BytesIO()
        img.save(buf, "PNG", optimize=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    except OSError:
        pass  # the cache is an optimisation only
    return img


def _last_marks(pdf: bytes, marks: tuple[str, ...]) -> dict[str, tuple] | None:
    """For each of ``marks``: (page index, page's media box, (x, y, size)) of its last run, searching from the last page back,
    each page's text read once for all of them (pypdf's text extraction is most of a signature's cost). None when
    the file cannot be read."""
    from pypdf import PdfReader  # noqa: PLC0415

    found: dict[str, tuple] = {}
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        for page_index in range(len(reader.pages) - 1, -1, -1):
            page = reader.pages[page_index]
            wanted = [m for m in marks if m not in found]
            hits = _marks_on(page, wanted)
            for mark in wanted:
                if hits[mark]:
                    box = page.mediabox
                    found[mark] = (page_index, (float(box.left), float(box.bottom), float(box.right), float(box.top)),
                                   hits[mark][-1])
            if len(found) == len(marks):
                break
    except Exception:
        return None
    return found


def _marks_on(page, marks: list[str]) -> dict[str, list[tuple[float, float, float]]]:
    hits: dict[str, list[tuple[float, float, float]]] = {m: [] for m in marks}

    def visit(text, cm, tm, font_dict, font_size):
        squeezed = text.replace(" ", "")
        for mark in marks:
            if mark in squeezed:
                a, b, _c, _d, e, f = tm
                ca, cb, cc, cd, ce, cf = cm
                x = e * ca + f * cc + ce
                y = e * cb + f * cd + cf
                hits[mark].append((x, y, font_size * math.hypot(a * ca + b * cc, a * cb + b * cd)))

    page.extract_text(visitor_text=visit)
    return hits


def _seal_place(found) -> tuple[int, tuple[float, float, float, float]] | None:
    if found is None:
        return None
    page_index, (left, bottom, right, top), (x, y, size) = found
    cx = x + size * len(SEAL_MARK) / 2  # CJK glyphs are one em wide
    cy = y + size * 0.35  # the line's middle, above the baseline
    half = SEAL_SIZE_PT / 2
    x1, y1 = max(left, cx - half), max(bottom, cy - half)
    x2, y2 = min(right, cx + half), min(top, cy + half)
    return page_index, (round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2))


def _signature_place(found) -> tuple[int, tuple[float, float, float, float]] | None:
    if found is None:
        return None
    page_index, (page_left, bottom, right, top), (x, y, size) = found
    width, height = SIGNATURE_SIZE_PT
    middle = y - size * 4.4  # the signing line: two text lines and 6 mm below the party's name
    left = x + size * 3.6  # clear of the 签署日期 label
    x1, y1 = max(page_left, left), max(bottom, middle - height / 2)
    x2, y2 = min(right, left + width), min(top, middle + height / 2)
    return page_index, (round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2))


def seal_box(pdf: bytes) -> tuple[int, tuple[float, float, float, float]] | None:
    """(page index, (x1, y1, x2, y2)) of the seal circle of the signature block, in PDF points.

    Found by the 合同专用章 text the templates print in the middle of the circle: the
    last occurrence, searching from the last page back (the signature block is on the
    last page, or before the appended repayment schedule).  None when there is no such
    text (e.g. a template without a signature block): then the seal stays invisible.
    """
    return _seal_place((_last_marks(pdf, (SEAL_MARK,)) or {}).get(SEAL_MARK))


def signature_box(pdf: bytes) -> tuple[int, tuple[float, float, float, float]] | None:
    """(page index, box) of the customer's signature in the signature block: on the signing line of the column
    that says （电子签名）, after its 签署日期 label (the templates' .sign-line under the party and its legal
    representative). None without one."""
    return _signature_place((_last_marks(pdf, (SIGNATURE_MARK,)) or {}).get(SIGNATURE_MARK))


def signature_places(pdf: bytes) -> dict[str, list | None]:
    """Both places of the signature block in one reading of the file: ``{"seal": seal_box(pdf), "signature":
    signature_box(pdf)}``, each as [page index, [x1, y1, x2, y2]] (JSON-shaped, so that it can be kept in a cache)
    or None. The pages' content is all that decides them: a signature added as an incremental update leaves them
    where they were."""
    return _places(_last_marks(pdf, (SEAL_MARK, SIGNATURE_MARK)) or {})


#: The texts :func:`places_from_layout` needs drawn positions of (contracts.pdf.render_pdf_marked's ``marks``).
PLACE_MARKS = (SEAL_MARK, SIGNATURE_MARK)


def places_from_layout(marks: dict[str, tuple]) -> dict[str, list | None]:
    """:func:`signature_places` from where the renderer drew the marks (contracts.pdf.render_pdf_marked with
    ``marks=PLACE_MARKS``), without reading the file: the same page, the same run origin and font size as the file's
    content stream states them, so the same places (to the hundredth of a point they are rounded to)."""
    return _places({mark: (page_index, (0.0, 0.0, width, height), run)
                    for mark, (page_index, run, (width, height)) in marks.items()})


def _places(found: dict) -> dict[str, list | None]:
    places = {"seal": _seal_place(found.get(SEAL_MARK)), "signature": _signature_place(found.get(SIGNATURE_MARK))}
    return {k: [v[0], list(v[1])] if v else None for k, v in places.items()}


@lru_cache(maxsize=32)
def signature_image(name: str, line: str, font_path: str | None = None):
    """The enterprise's signature stamp: a blue frame with its name and ``line`` (电子签名 and its code), drawn
    with the CJK font on a transparent ground, so the signing line of the template shows through."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    from .pdf import find_cjk_font  # noqa: PLC0415

    font = Path(font_path) if font_path else find_cjk_font()
    w, h = 1200, 360
    img = Image.new("RGBA", (w, h), (255, 255, 255, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((6, 6, w - 6, h - 6), radius=28, outline=BLUE, width=10)
    big = ImageFont.truetype(str(font), 84 if len(name) <= 12 else max(44, int(84 * 12 / len(name))))
    small = ImageFont.truetype(str(font), 46)
    d.text((w / 2, h * 0.38), name[:24], font=big, fill=BLUE, anchor="mm")
    d.text((w / 2, h * 0.75), line[:48], font=small, fill=BLUE, anchor="mm")
    return img
