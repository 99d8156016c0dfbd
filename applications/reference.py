"""Intake's reference data seeded for a new installation (and after a test flush): the data-query authorisation
text in force (数据查询授权书). A new version is published in admin; the authorisations keep the one they named."""

from __future__ import annotations

from .models import AuthorisationText

AUTHORISATION_TEXT = {
    "version": "2026-2",
    "title": "企业信息查询授权书",
    "body": (
        "本人系本企业的法定代表人（或经法定代表人书面授权的经办人），已通过身份核验。本人代表本企业，授权示范银行股份有限公司"
        "为审查本次贷款申请及贷后管理之目的，向下列所勾选的数据源查询本企业的信息：税务、工商登记、社保、海关、"
        "征信（中国人民银行征信中心及依法设立的征信机构）、司法及本行内部数据。\n"
        "授权范围以本人勾选的数据源为限，有效期至本次申请结清或被拒绝之日止。本人可随时在网上银行或通过本接口撤回授权；"
        "撤回后银行不再查询，撤回前已查询的信息仍作为相关审批决定的依据按法律规定保存。\n"
        "银行依照《征信业管理条例》《中华人民共和国个人信息保护法》处理所获信息，仅用于上述目的，不向第三方提供。"
    ),
    "body_en": (
        "I am the enterprise's legal representative (or an agent authorised by the legal representative in writing) and "
        "my identity has been verified. On behalf of the enterprise I authorise Demo Bank Co., Ltd. to query the "
        "enterprise's information from the sources I tick: tax, business registry, social security, customs, credit "
        "bureau (the PBOC Credit Reference Center and licensed credit bureaus), judicial and the bank's own records, to "
        "review this loan application and to monitor the loan.\n"
        "The authorisation covers only the sources ticked and lasts until this application is repaid or declined. I can "
        "withdraw it at any time in the portal or through the API; afterwards the bank makes no further query, and "
        "what it fetched before stays, as the law requires, with the decisions it served.\n"
        "The bank handles the information under the Regulation on the Administration of Credit Reporting and the "
        "Personal Information Protection Law, for these purposes only, and gives it to no third party."
    ),
}


def seed_authorisation_text() -> None:
    """The first published version, unless one is already in force."""
    if not AuthorisationText.objects.filter(is_current=True).exists():
        AuthorisationText.objects.get_or_create(version=AUTHORISATION_TEXT["version"],
                                                defaults={**AUTHORISATION_TEXT, "is_current": True})
