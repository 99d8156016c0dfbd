"""An enterprise's public registration record, read for the owner to confirm instead of typing it.

The intake wizard asks for the unified social credit code and, with the owner's consent, reads the registry
source: what the public registry (国家企业信用信息公示系统) shows anyone — name, legal form, legal
representative's name, industry, founding date. Nothing is stored: the answer fills the form the owner checks;
the enterprise is created from what the owner submits.

What the public record does not show stays the owner's to type: the representative's ID number (personal data),
and revenue and headcount (tax and social-security data; the person at the keyboard has not yet shown they act
for the enterprise, so its confidential figures are not shown to them). `registry_record(sources=...)` can read
tax and social security too, for a caller that has established that authority.

The registry source's normalised schema (underwriting.sources) carries no names; the public record's name,
legal form and representative's name come from the directory of the configured provider: the sandbox has a
deterministic one (from the code, like its other data); a live registry integration fills them in the same
shape, and without one the owner types them.
"""

from __future__ import annotations

import hashlib
import logging

from django.utils import timezone

from . import providers as provider_lib
from . import services

log = logging.getLogger(__name__)
LOOKUP_SOURCES = ("registry",)

_CITIES = ["上海", "苏州", "杭州", "宁波", "南京", "无锡", "嘉兴", "合肥", "青岛", "厦门", "东莞", "佛山"]
_WORDS = ["恒信", "瑞丰", "华创", "宏达", "鑫源", "永顺", "嘉禾", "联泰", "盛世", "润和", "明德", "汇通", "启航", "锦程"]
_TRADES = {"A": "农业发展", "C": "制造", "E": "建设工程", "F": "商贸", "G": "物流", "H": "餐饮管理", "I": "信息技术",
           "L": "商务服务", "M": "科技"}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ["建国", "海波", "丽华", "志强", "晓明", "秀英", "伟", "静", "磊", "敏", "军", "芳", "洋", "勇", "艳"]


def _pick(seq, uscc: str, salt: str):
    digest = hashlib.sha256(f"directory:{salt}:{uscc}".encode()).digest()
    return seq[int.from_bytes(digest[:4], "big") % len(seq)]


def _sandbox_directory(uscc: str, industry_code: str) -> dict:
    trade = _TRADES.get(industry_code[:1], "实业")
    return {
        "name": f"{_pick(_CITIES, uscc, 'city')}{_pick(_WORDS, uscc, 'word')}{trade}有限公司",
        "legal_form": "llc",
        "legal_rep_name": f"{_pick(_SURNAMES, uscc, 'surname')}{_pick(_GIVEN, uscc, 'given')}",
    }


def registry_record(*, uscc: str, sources=LOOKUP_SOURCES) -> dict | None:
    """The public record for a valid, consented-for `uscc`: name, legal_form, legal_rep_name, industry_code,
    founded_on (and employees / annual_revenue when `sources` includes tax and social security and they answer);
    the keys it could not fill are absent. None when the registry does not answer (the owner types the details)."""
    today = timezone.localdate()
    payloads: dict[str, dict] = {}
    for source in sources:
        config = services.source_config(source)
        if config.provider == "push" or not config.is_active:
            continue
        try:
            payloads[source] = services.provider_for(config).fetch(source, uscc, as_of=today, hints={})
        except provider_lib.ProviderError as exc:
            log.info("registry lookup: %s unavailable (%s)", source, exc)
    registry = payloads.get("registry")
    if not registry:
        return None
    record = {"uscc": uscc, "status": registry["status"], "founded_on": registry["founded_on"],
              "industry_code": registry["industry_code"]}
    if services.source_config("registry").provider != "http":
        record.update(_sandbox_directory(uscc, registry["industry_code"]))
    if payloads.get("tax"):
        record["annual_revenue"] = payloads["tax"]["revenue_12m"]
    if payloads.get("social_security"):
        record["employees"] = payloads["social_security"]["headcount"]
    record["sources"] = sorted(payloads)
    return record
