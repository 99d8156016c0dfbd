"""Uploaded CSV files (partner prospect lists, repayment files from core banking): size and encoding, one rule."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .errors import ApplicationError

CSV_MAX_BYTES = 5 * 1024 * 1024


def csv_text(content: bytes, *, max_bytes: int = CSV_MAX_BYTES) -> str:
    """The text of an uploaded CSV: UTF-8 (with or without BOM) or GBK/GB18030, as core banking and Excel export it.
    Refused with the field named when it is too large or in neither encoding."""
    if len(content) > max_bytes:
        raise ApplicationError(_("文件过大 / The file is too large."),
                               errors={"file": [_("不超过%(mb)s MB / At most %(mb)s MB.") % {"mb": max_bytes // (1024 * 1024)}]})
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ApplicationError(_("文件编码无法识别 / The file encoding is not readable."),
                           errors={"file": [_("请使用 UTF-8 或 GBK 编码的 CSV / Use a UTF-8 or GBK CSV file.")]})
