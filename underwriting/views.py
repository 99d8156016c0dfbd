"""Form handlers for the RM's due diligence on the staff case page (collateral, guarantors, notes).

The case page itself (loanservice/staff_views.py) dispatches these by action name; each calls one service
and returns the message to show. Errors (ApplicationError, Conflict) are shown by the caller."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404
from django.utils.translation import gettext as _

from . import services
from .models import Collateral, Guarantor


def collateral_add(request, application) -> str:
    p = request.POST
    services.collateral_add(application=application, by=request.user, kind=p.get("kind", ""), description=p.get("description", ""),
                            valuation=p.get("valuation"), appraiser=p.get("appraiser", ""), appraised_on=p.get("appraised_on"),
                            ltv=p.get("ltv") or None, owner_name=p.get("owner_name", ""), certificate_no=p.get("certificate_no", ""))
    return _("押品已登记，建议额度已重算 / Collateral recorded; the recommended limit was recomputed.")


def collateral_remove(request, application) -> str:
    item = Collateral.objects.filter(application=application, pk=request.POST.get("item") or 0).first()
    if item is None:
        raise Http404
    services.collateral_remove(collateral=item, by=request.user)
    return _("押品已删除 / Collateral removed.")


def guarantor_add(request, application) -> str:
    p = request.POST
    guarantor = services.guarantor_add(application=application, by=request.user, kind=p.get("kind", ""), name=p.get("name", ""),
                                       uscc=p.get("uscc", ""), id_number=p.get("id_number", ""),
                                       relationship=p.get("relationship", ""), guaranteed_amount=p.get("guaranteed_amount") or None)
    if guarantor.prescreen_passed:
        return _("保证人已登记，预审通过 / Guarantor recorded; pre-screen passed.")
    return _("保证人已登记，但预审未通过，请关注 / Guarantor recorded, but the pre-screen found a problem.")


def guarantor_remove(request, application) -> str:
    item = Guarantor.objects.filter(application=application, pk=request.POST.get("item") or 0).first()
    if item is None:
        raise Http404
    services.guarantor_remove(guarantor=item, by=request.user)
    return _("保证人已删除 / Guarantor removed.")


def note_add(request, application) -> str:
    services.case_note_add(application=application, by=request.user, text=request.POST.get("text", ""))
    return _("笔记已保存 / Note saved.")


CASE_ACTIONS: dict[str, Callable] = {
    "collateral": collateral_add,
    "collateral_remove": collateral_remove,
    "guarantor": guarantor_add,
    "guarantor_remove": guarantor_remove,
    "note": note_add,
}
