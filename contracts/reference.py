"""Reference data of the contracts stage: the default conditions precedent (放款前提条件), as data.

Idempotent (get_or_create by code); admin edits made afterwards are never overwritten. Called from
casework.reference_data.seed_contract_templates."""

from __future__ import annotations

from .models import ConditionPrecedent

# code, text, text_en, scope, secured_only, auto_check, contract_kind
CONDITIONS_PRECEDENT = [
    ("CONTRACTS_SIGNED", "借款合同及全部担保合同已签署", "The loan contract and every security contract are signed",
     "product", False, "contracts_signed", ""),
    ("ADD_GUARANTOR", "追加保证人，保证合同已签署", "A guarantor added; the guarantee contract is signed",
     "approval", False, "guarantee_signed", "guarantee"),
    ("REGISTERED_MORTGAGE", "办妥抵押登记，取得不动产登记证明", "Mortgage registered; registration certificate obtained",
     "approval", False, "", "mortgage"),
    ("ACCOUNT_SUPERVISION", "开立监管账户，回款归集", "A supervised account is opened for receipts",
     "approval", False, "", ""),
    ("ACCOUNT_OPENED", "借款人已在本行开立结算账户", "The borrower holds a settlement account with the bank",
     "approval", False, "account_opened", ""),
]


def seed_conditions_precedent() -> None:
    for order, (code, text, text_en, scope, secured_only, check, kind) in enumerate(CONDITIONS_PRECEDENT):
        ConditionPrecedent.objects.get_or_create(code=code, defaults=dict(
            text=text, text_en=text_en, scope=scope, secured_only=secured_only, auto_check=check, contract_kind=kind,
            order=order))
