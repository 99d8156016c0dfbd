"""Uploaded CSV files (prospect lists, repayment files): one size and encoding rule for both imports."""

from __future__ import annotations

import pytest

from loanservice.csvfiles import csv_text
from loanservice.errors import ApplicationError


def test_utf8_with_bom_and_gbk_are_read():
    assert csv_text("\ufeff贷款编号,金额\n".encode()) == "贷款编号,金额\n"
    assert csv_text("贷款编号,金额\n".encode("gbk")) == "贷款编号,金额\n"


@pytest.mark.parametrize("content", [b"\xff\xfe\xff\xff", b"x" * (5 * 1024 * 1024 + 1)])
def test_unreadable_or_oversize_files_name_the_file_field(content):
    with pytest.raises(ApplicationError) as exc:
        csv_text(content)
    assert list(exc.value.errors) == ["file"]


@pytest.mark.django_db
def test_the_prospect_import_refuses_an_oversize_list_in_the_service(org):
    from marketing.services import prospect_list_import

    with pytest.raises(ApplicationError) as exc:
        prospect_list_import(kind="industrial_park", partner_name="某园区", file_name="big.csv",
                             content=b"uscc,name\n" + b"x" * (5 * 1024 * 1024), by=org["demo_risk"])
    assert "file" in exc.value.errors
