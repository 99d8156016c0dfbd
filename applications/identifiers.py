"""USCC (GB 32100), resident ID (GB 11643) and industry code (GB/T 4754) checks; identifiers with python-stdnum.

stdnum's resident-ID validate() also refuses a county code that did not exist in the holder's birth
year, yet a genuine ID carries the county of first registration (people born in the 1970s-80s often
hold codes of districts created in the 1990s). We check format, birth date and check digit, and treat
an unknown county as a warning, never a refusal.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc


@dataclass
class IdCheck:
    value: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_uscc(value: str) -> IdCheck:
    compact = uscc.compact(value or "")
    result = IdCheck(compact)
    try:
        uscc.validate(compact)
    except stdnum_errors.InvalidLength:
        result.errors.append(_("统一社会信用代码应为18位 / The USCC must be 18 characters."))
    except stdnum_errors.InvalidChecksum:
        result.errors.append(_("统一社会信用代码校验位不正确，请核对 / The USCC check character is wrong; please check it."))
    except stdnum_errors.ValidationError:
        result.errors.append(_("统一社会信用代码格式不正确 / The USCC format is not valid."))
    return result


def check_resident_id(value: str, *, today: dt.date | None = None) -> IdCheck:
    compact = ric.compact(value or "")
    result = IdCheck(compact)
    if len(compact) != 18:
        result.errors.append(_("身份证号应为18位 / The resident ID number must be 18 characters."))
        return result
    if not compact[:-1].isdigit() or not (compact[-1].isdigit() or compact[-1] == "X"):
        result.errors.append(_("身份证号格式不正确 / The resident ID number format is not valid."))
        return result
    try:
        birth = ric.get_birth_date(compact)
    except stdnum_errors.ValidationError:
        result.errors.append(_("身份证号中的出生日期无效 / The birth date in the ID number is not valid."))
        return result
    today = today or dt.date.today()
    if birth > today or birth.year < 1900:
        result.errors.append(_("身份证号中的出生日期无效 / The birth date in the ID number is not valid."))
        return result
    if ric.calc_check_digit(compact) != compact[-1]:
        result.errors.append(_("身份证号校验位不正确，请核对 / The ID number check digit is wrong; please check it."))
        return result
    try:
        ric.get_birth_place(compact)
    except stdnum_errors.ValidationError:
        result.warnings.append(
            _("地区代码未能识别，请人工核对 / The region code is not recognised; please verify manually.")
        )
    return result


def resident_age(id_number: str, *, on: dt.date) -> int:
    birth = ric.get_birth_date(id_number)
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def region_of_uscc(value: str) -> str:
    """Characters 3-8 of the USCC are the registration authority's administrative division code."""
    return value[2:8] if len(value) == 18 else ""


# GB/T 4754-2017: each section letter covers a range of two-digit divisions.
INDUSTRY_SECTIONS = {
    "A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52), "G": (53, 60),
    "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72), "M": (73, 75), "N": (76, 79),
    "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90), "S": (91, 96), "T": (97, 97),
}
_INDUSTRY_RE = re.compile(r"^([A-T])(\d{2,4})$")


def check_industry_code(value: str) -> IdCheck:
    """A GB/T 4754-2017 code: the section letter, then the division (2 digits), optionally group and class."""
    compact = (value or "").strip().upper().replace(" ", "")
    result = IdCheck(compact)
    match = _INDUSTRY_RE.match(compact)
    if not match:
        result.errors.append(_("行业代码应为门类字母加2至4位数字，如 C1711 / The industry code is a section letter "
                               "followed by 2 to 4 digits, e.g. C1711."))
        return result
    section, digits = match.groups()
    low, high = INDUSTRY_SECTIONS[section]
    if not low <= int(digits[:2]) <= high:
        result.errors.append(_("行业代码的大类不属于门类 %(s)s（应为 %(low)02d-%(high)02d）/ Division %(d)s is not in "
                               "section %(s)s (%(low)02d-%(high)02d).")
                             % {"s": section, "d": digits[:2], "low": low, "high": high})
    return result
