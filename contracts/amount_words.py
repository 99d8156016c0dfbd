"""Chinese financial capital amounts (中文大写金额) for contracts and vouchers.

Follows the PBOC rules for filling in bills and settlement vouchers
(《正确填写票据和结算凭证的基本规定》):

* digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟, section units 万 / 亿;
* one 零 for a run of zeros inside the number (1005 -> 壹仟零伍, 10010000 ->
  壹仟零壹万, 100000005 -> 壹亿零伍), no 零 for trailing zeros (300000 -> 叁拾万);
* a ten at the start of a number is written 壹拾 (壹拾万, 壹拾伍元), never bare 拾;
* 整 after 元 and after 角; nothing after 分;
* 角 zero and 分 non-zero: 零 after 元 (1.05 -> 壹元零伍分);
* where the rules allow either form (元位 is 0 but 角 non-zero, e.g. 1680.32; or a
  zero 万位 followed by a non-zero 仟位, e.g. 107000.53) the form without 零 is used:
  壹仟陆佰捌拾元叁角贰分, 壹拾万柒仟元伍角叁分;
* amounts below one yuan have no 元 part (0.50 -> 伍角整, 0.05 -> 伍分); zero is 零元整.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["amount_to_chinese", "MAX_AMOUNT"]

MAX_AMOUNT = Decimal("999999999999.99")

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("仟", "佰", "拾", "")
_SECTIONS = ("亿", "万", "")
_CENT = Decimal("0.01")


def _to_decimal(amount) -> Decimal:
    if isinstance(amount, bool):
        raise TypeError("amount must be a Decimal, int or str, not bool")
    if isinstance(amount, Decimal):
        value = amount
    elif isinstance(amount, int | str):
        try:
            value = Decimal(amount.strip() if isinstance(amount, str) else amount)
        except InvalidOperation as exc:
            raise ValueError(f"not a valid amount: {amount!r}") from exc
    elif isinstance(amount, float):
        # shortest repr, so 1005.3 -> Decimal("1005.3") rather than the binary expansion
        value = Decimal(repr(amount))
    else:
        raise TypeError(f"amount must be a Decimal, int or str, not {type(amount).__name__}")
    if not value.is_finite():
        raise ValueError(f"amount must be a finite number, got {amount!r}")
    return value


def _section(n: int) -> str:
    """Words for 1 <= n <= 9999, without leading 零."""
    out = []
    pending_zero = False
    for digit, unit in zip(f"{n:04d}", _UNITS, strict=True):
        d = int(digit)
        if d == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_DIGITS[d] + unit)
    return "".join(out)


def _integer_words(n: int) -> str:
    """Words for 1 <= n < 10**12 (without 元)."""
    parts = (n // 10**8, n // 10**4 % 10**4, n % 10**4)
    out = []
    gap = False  # an all-zero section was skipped since the last output
    for value, unit in zip(parts, _SECTIONS, strict=True):
        if value == 0:
            gap = bool(out)
            continue
        if out and (gap or value < 1000):
            out.append("零")
        out.append(_section(value) + unit)
        gap = False
    return "".join(out)


def amount_to_chinese(amount: Decimal, prefix: bool = True) -> str:
    """Financial capital form of ``amount`` (yuan), e.g. 300000 -> 人民币叁拾万元整.

    :param amount: 0 <= amount <= 999999999999.99, at most two decimals
        (Decimal, int or str; a float is taken by its shortest repr).
    :param prefix: prepend 人民币 (default True).
    :raises ValueError: negative, more than two decimals, too large, or not a number.
    """
    value = _to_decimal(amount)
    if value < 0:
        raise ValueError(f"amount must not be negative, got {value}")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount must not exceed {MAX_AMOUNT}, got {value}")
    if value != value.quantize(_CENT):
        raise ValueError(f"amount must have at most two decimals, got {value}")

    cents = int(value.quantize(_CENT) * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10

    if cents == 0:
        words = "零元整"
    else:
        words = _integer_words(yuan) + "元" if yuan else ""
        if jiao == 0 and fen == 0:
            words += "整"
        elif jiao:
            words += _DIGITS[jiao] + "角" + (_DIGITS[fen] + "分" if fen else "整")
        else:
            words += ("零" if yuan else "") + _DIGITS[fen] + "分"
    return ("人民币" if prefix else "") + words
