"""Marketing demo data (wired by casework.demo): partner lists imported through the real import service, the
bank's settlement customers without a loan, contacts and invitations; some invited prospects apply in the
demo history (casework.demo.seed_history), so the conversion prospect → application → loan is real. Idempotent."""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from marketing import services
from marketing.models import Prospect, ProspectList
from underwriting.providers import make_uscc

from .clock import at as travel

PARK = "张江高科技园区 Zhangjiang Hi-Tech Park"
ASSOCIATION = "上海市服装行业协会 Shanghai Garment Association"
CORE = "申华汽车零部件集团（核心企业）Shenhua Auto Parts Group"
NAMES = ["智能装备", "新材料", "电子科技", "服饰", "贸易", "汽车配件", "模具", "包装材料", "物流", "生物科技"]
INDUSTRIES = ["C3399", "C2927", "C3981", "C1830", "F5132", "C3311", "C3360", "C2927", "G543", "M75"]


def _csv(seed: int, count: int, *, region: str = "31", bad_rows: int = 1) -> bytes:
    rng = random.Random(seed)
    lines = ["uscc,name,contact_name,contact_phone,industry_code,annual_revenue,employees"]
    n = seed
    while len(lines) <= count:
        uscc = make_uscc(n)
        n += 1
        if uscc[2:4] != region:
            continue
        k = rng.randrange(len(NAMES))
        lines.append(f"{uscc},上海{NAMES[k]}{n % 1000:03d}有限公司,王{'一二三四五六七八'[k % 8]},1390000{n % 10000:04d},"
                     f"{INDUSTRIES[k]},{rng.randint(30, 300) * 100000},{rng.randint(10, 180)}")
    lines += ["91310000XXXXXXXX00,格式错误的企业,,,,," for _ in range(bad_rows)]
    return "\n".join(lines).encode("utf-8")


def prospects_for_history(users: dict, *, at: dt.datetime) -> list[tuple[str, str]]:
    """A park list imported before the history starts; its pre-qualified prospects are called and invited, and the
    history lets some of them apply. Returns (uscc, name) of the invited, best first."""
    existing = ProspectList.objects.filter(partner_name=PARK).first()
    if existing is None:
        moment = at
        with travel(moment):
            plist = services.prospect_list_import(kind="industrial_park", partner_name=PARK, file_name="zhangjiang.csv",
                                                  content=_csv(910000, 40), by=users.get("demo_rm"))
        invited = []
        for i, prospect in enumerate(plist.prospects.filter(prequalified=True).order_by("-expected_value", "id")[:20]):
            with travel(moment + dt.timedelta(days=2, hours=i)):
                services.contact_record(prospect=prospect, by=prospect.relationship_manager, channel="phone",
                                        outcome="interested", note="介绍信秒贷，客户有意向")
                services.invitation_create(prospect=prospect, by=prospect.relationship_manager)
            invited.append(prospect)
        existing = plist
    return list(existing.prospects.filter(invited_at__isnull=False).order_by("-expected_value", "id").values_list("uscc", "name"))


def seed_demo_data(users: dict) -> None:
    rm = users.get("demo_rm")
    if not ProspectList.objects.filter(partner_name=ASSOCIATION).exists():
        with travel(timezone.now() - dt.timedelta(days=40)):
            services.prospect_list_import(kind="trade_association", partner_name=ASSOCIATION, file_name="garment.csv",
                                          content=_csv(920000, 25), by=rm)
    if not ProspectList.objects.filter(partner_name=CORE).exists():
        with travel(timezone.now() - dt.timedelta(days=12)):
            services.prospect_list_import(kind="core_enterprise", partner_name=CORE, file_name="suppliers.csv",
                                          content=_csv(930000, 15, bad_rows=0), by=rm)
    if not ProspectList.objects.filter(kind="settlement").exists():
        roster = [{"uscc": make_uscc(940000 + i), "name": f"本行结算客户{i:03d}有限公司"} for i in range(30)]
        with travel(timezone.now() - dt.timedelta(days=5)):
            services.prospects_derive_from_settlement(by=users.get("demo_risk"), candidates=roster)
    # A few calls already made on demo_rm's queue, so every status shows.
    if rm is not None and not Prospect.objects.filter(relationship_manager=rm, contacts__isnull=False,
                                                      prospect_list__partner_name=ASSOCIATION).exists():
        outcomes = ["no_answer", "callback", "interested", "not_interested", "wrong_contact"]
        queue = Prospect.objects.filter(relationship_manager=rm, status=Prospect.Status.NEW,
                                        prospect_list__partner_name=ASSOCIATION).order_by("-expected_value", "id")[:len(outcomes)]
        for prospect, outcome in zip(queue, outcomes, strict=False):
            services.contact_record(prospect=prospect, by=rm, channel="phone", outcome=outcome, note="演示联系记录",
                                    next_action_on=timezone.localdate() + dt.timedelta(days=3) if outcome == "callback" else None)
