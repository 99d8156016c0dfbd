"""Small charts for the enterprise profile (企业画像), drawn as inline SVG on the server: no chart library
and no CDN, readable without JavaScript, and every figure also in the table next to it."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

GOOD, BAD, NEUTRAL, MUTED = "#1a7f37", "#cf222e", "#0969da", "#8c959f"


# Amounts are shortened in the reader's units: 万 (10^4) and 亿 (10^8) in Chinese, K, M and B in English.
# (from, divided by, suffix, decimals)
CNY_UNITS = {"zh": ((1e8, 1e8, "亿", 2), (1e4, 1e4, "万", 0)),
             "en": ((1e9, 1e9, "B", 2), (1e6, 1e6, "M", 1), (1e4, 1e3, "K", 0))}


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _fmt(value: float, unit: str) -> str:
    if unit == "cny":
        for start, size, suffix, digits in CNY_UNITS["en" if _english() else "zh"]:
            if abs(value) >= start:
                return f"{value / size:,.{digits}f}{suffix}"
        return f"{value:,.0f}"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_pair(title: str, before: tuple[str, float | None], after: tuple[str, float | None], *, unit: str = "cny",
             higher_is_better: bool = True) -> SafeString:
    """Two vertical bars (e.g. previous and last 12 months) with the change between them."""
    (label_a, a), (label_b, b) = before, after
    w, h, base = 220, 130, 100
    top = max(x for x in (a, b, 0) if x is not None) or 1
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    change = None
    if a and b is not None:
        change = b / a - 1
    colour = NEUTRAL if change is None else (GOOD if (change >= 0) == higher_is_better else BAD)
    for i, (label, value) in enumerate(((label_a, a), (label_b, b))):
        x = 40 + i * 90
        if value is None:
            parts.append(f'<text x="{x + 25}" y="{base - 4}" text-anchor="middle" font-size="11" fill="{MUTED}">—</text>')
        else:
            bh = max(1.0, (value / top) * 80) if value > 0 else 1.0
            fill = MUTED if i == 0 else colour
            parts.append(f'<rect x="{x}" y="{base - bh:.1f}" width="50" height="{bh:.1f}" fill="{fill}" rx="2"/>')
            parts.append(f'<text x="{x + 25}" y="{base - bh - 4:.1f}" text-anchor="middle" font-size="11">{escape(_fmt(value, unit))}</text>')
        parts.append(f'<text x="{x + 25}" y="{base + 14}" text-anchor="middle" font-size="11" fill="{MUTED}">{escape(label)}</text>')
    if change is not None:
        sign = "+" if change >= 0 else ""
        parts.append(f'<text x="{w - 4}" y="{h - 4}" text-anchor="end" font-size="12" font-weight="bold" fill="{colour}">'
                     f"{sign}{change * 100:.1f}%</text>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def meter(title: str, value: float | None, *, bands: Sequence[tuple[float, str]], maximum: float, unit: str = "ratio") -> SafeString:
    """A horizontal gauge with coloured bands (e.g. debt to revenue: green < 0.5, amber < 1.2, red)."""
    w, h = 240, 46
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    start = 0.0
    for upper, colour in bands:
        x0, x1 = 10 + 220 * min(start, maximum) / maximum, 10 + 220 * min(upper, maximum) / maximum
        parts.append(f'<rect x="{x0:.1f}" y="14" width="{max(0.0, x1 - x0):.1f}" height="10" fill="{colour}" opacity="0.35"/>')
        start = upper
    if value is None:
        parts.append(f'<text x="{w / 2}" y="40" text-anchor="middle" font-size="11" fill="{MUTED}">—</text>')
    else:
        x = 10 + 220 * min(max(value, 0.0), maximum) / maximum
        parts.append(f'<polygon points="{x - 5:.1f},6 {x + 5:.1f},6 {x:.1f},14" fill="#24292f"/>')
        parts.append(f'<text x="{x:.1f}" y="40" text-anchor="middle" font-size="11">{escape(_fmt(value, unit))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def hbars(title: str, rows: Sequence[tuple[str, float, float]]) -> SafeString:
    """Horizontal bars of value out of maximum (e.g. points per scorecard dimension)."""
    # The label column fits the longest label (about 11 px a Chinese character, 6 px a Latin one at 11 px).
    label_w = max([80] + [8 + sum(11 if ord(ch) > 0x2E7F else 6 for ch in str(label)) for label, _v, _m in rows])
    w, row_h = label_w + 180, 22
    h = row_h * len(rows) + 6
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for i, (label, value, maximum) in enumerate(rows):
        y = 4 + i * row_h
        share = 0.0 if maximum <= 0 else min(max(value / maximum, 0.0), 1.0)
        colour = GOOD if share >= 0.7 else (NEUTRAL if share >= 0.4 else BAD)
        parts.append(f'<text x="0" y="{y + 13}" font-size="11">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="130" height="12" fill="#eaeef2" rx="2"/>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{130 * share:.1f}" height="12" fill="{colour}" rx="2"/>')
        parts.append(f'<text x="{w - 2}" y="{y + 13}" text-anchor="end" font-size="11">{value:.0f}/{maximum:.0f}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def sparkline(title: str, points: Sequence[tuple[str, float]], *, unit: str = "cny") -> SafeString | None:
    """A line over dated values (e.g. revenue across the tax snapshots kept); None with fewer than two."""
    if len(points) < 2:
        return None
    w, h = 240, 60
    values = [v for _label, v in points]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = 220 / (len(points) - 1)
    coords = [(10 + i * step, 40 - 30 * (v - lo) / span) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<polyline points="{path}" fill="none" stroke="{NEUTRAL}" stroke-width="2"/>']
    for (x, y), (label, v) in zip(coords, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{NEUTRAL}"><title>{escape(label)}: {escape(_fmt(v, unit))}</title></circle>')
    parts.append(f'<text x="10" y="{h - 4}" font-size="10" fill="{MUTED}">{escape(points[0][0])}</text>')
    parts.append(f'<text x="{w - 10}" y="{h - 4}" text-anchor="end" font-size="10" fill="{MUTED}">{escape(points[-1][0])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
