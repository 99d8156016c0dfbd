from decimal import Decimal

import pytest

from contracts.amount_words import MAX_AMOUNT, amount_to_chinese

CASES = [
    # brief examples
    ("300000", "人民币叁拾万元整"),
    ("1005.30", "人民币壹仟零伍元叁角整"),
    ("100000.05", "人民币壹拾万元零伍分"),
    ("10010000.00", "人民币壹仟零壹万元整"),
    ("0.5", "人民币伍角整"),
    ("0", "人民币零元整"),
    # PBOC examples (《正确填写票据和结算凭证的基本规定》)
    ("1409.50", "人民币壹仟肆佰零玖元伍角整"),
    ("6007.14", "人民币陆仟零柒元壹角肆分"),
    ("16409.02", "人民币壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "人民币叁佰贰拾伍元零肆分"),
    ("1680.32", "人民币壹仟陆佰捌拾元叁角贰分"),  # optional 零 after 元 omitted
    ("107000.53", "人民币壹拾万柒仟元伍角叁分"),  # optional 零 after 万 omitted
    # sub-yuan
    ("0.05", "人民币伍分"),
    ("0.01", "人民币壹分"),
    ("0.10", "人民币壹角整"),
    ("0.99", "人民币玖角玖分"),
    # 壹拾 convention
    ("10", "人民币壹拾元整"),
    ("15", "人民币壹拾伍元整"),
    ("110", "人民币壹佰壹拾元整"),
    ("10.50", "人民币壹拾元伍角整"),
    ("150000", "人民币壹拾伍万元整"),
    ("1000000000", "人民币壹拾亿元整"),
    # single 零 for runs of zeros, none for trailing zeros
    ("1", "人民币壹元整"),
    ("1.05", "人民币壹元零伍分"),
    ("100.03", "人民币壹佰元零叁分"),
    ("101", "人民币壹佰零壹元整"),
    ("1001", "人民币壹仟零壹元整"),
    ("1010", "人民币壹仟零壹拾元整"),
    ("1100", "人民币壹仟壹佰元整"),
    ("10000", "人民币壹万元整"),
    ("10001", "人民币壹万零壹元整"),
    ("10010", "人民币壹万零壹拾元整"),
    ("10100", "人民币壹万零壹佰元整"),
    ("11000", "人民币壹万壹仟元整"),
    ("20030", "人民币贰万零叁拾元整"),
    ("100005", "人民币壹拾万零伍元整"),
    ("1000000", "人民币壹佰万元整"),
    ("100000000", "人民币壹亿元整"),
    ("100000005", "人民币壹亿零伍元整"),
    ("100005000", "人民币壹亿零伍仟元整"),
    ("100050000", "人民币壹亿零伍万元整"),
    ("120000000", "人民币壹亿贰仟万元整"),
    ("100100100", "人民币壹亿零壹拾万零壹佰元整"),
    ("200000010.01", "人民币贰亿零壹拾元零壹分"),
    ("1234567890.12", "人民币壹拾贰亿叁仟肆佰伍拾陆万柒仟捌佰玖拾元壹角贰分"),
    ("999999999999.99", "人民币玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ("500000000000", "人民币伍仟亿元整"),
    ("300000.00", "人民币叁拾万元整"),
    ("1.500", "人民币壹元伍角整"),  # trailing zero beyond the cents is still two decimals
]


@pytest.mark.parametrize(("amount", "expected"), CASES)
def test_known_amounts(amount, expected):
    assert amount_to_chinese(Decimal(amount)) == expected


def test_no_prefix():
    assert amount_to_chinese(Decimal("300000"), prefix=False) == "叁拾万元整"
    assert amount_to_chinese(Decimal("0"), prefix=False) == "零元整"


def test_accepts_int_str_and_float():
    assert amount_to_chinese(300000) == "人民币叁拾万元整"
    assert amount_to_chinese("1005.30") == "人民币壹仟零伍元叁角整"
    assert amount_to_chinese(0.5) == "人民币伍角整"
    assert amount_to_chinese(1005.3) == "人民币壹仟零伍元叁角整"


def test_max_amount_is_inclusive():
    assert amount_to_chinese(MAX_AMOUNT).endswith("玖角玖分")


@pytest.mark.parametrize(
    "amount",
    ["-0.01", "-1", "0.001", "1.005", "1000000000000", "999999999999.995", "NaN", "Infinity", "abc"],
)
def test_invalid_amounts(amount):
    with pytest.raises(ValueError):
        amount_to_chinese(amount if amount == "abc" else Decimal(amount))


def test_invalid_types():
    with pytest.raises(TypeError):
        amount_to_chinese(True)
    with pytest.raises(TypeError):
        amount_to_chinese([1])


def test_negative_zero_is_zero():
    assert amount_to_chinese(Decimal("-0.00")) == "人民币零元整"


def test_words_are_well_formed_for_many_amounts():
    """No doubled 零, no 零 before a unit or at the end of the yuan part, no bare 拾."""
    for cents in list(range(0, 200_001, 7)) + [10**k + j for k in range(2, 14) for j in (0, 1, 10, 100)]:
        if cents > int(MAX_AMOUNT * 100):
            continue
        words = amount_to_chinese(Decimal(cents) / 100, prefix=False)
        assert "零零" not in words
        assert "零元" not in words or words == "零元整"
        assert "零万" not in words and "零亿" not in words and "亿万" not in words
        assert not words.startswith("拾") and not words.startswith("零") or words == "零元整"
        assert words.endswith(("整", "分"))
