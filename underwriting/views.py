"""Form handlers for the RM's due diligence on the staff case page (collateral, guarantors, notes), and the
applicant's upload of documents an RM asked for while the case awaits information.

The case page itself (loanservice/staff_views.py) dispatches the staff handlers by action name; each calls one
service and returns the message to show. Errors (ApplicationError, Conflict) are shown by the caller."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from applications.forms import UPLOAD_INCOMPLETE, DocumentUploadForm
from applications.selectors import applications_visible_to
from applications.services import document_upload
from loanservice.api import form_input, serializer_input
from loanservice.errors import ApplicationError, Conflict
from loanservice.roles import permission_required

from . import services
from .models import Collateral, Guarantor
from .serializers import (
    COLLATERAL_INVALID,
    GUARANTOR_INVALID,
    NOTE_INVALID,
    CaseNoteSerializer,
    CollateralSerializer,
    GuarantorSerializer,
)


def collateral_add(request, application) -> str:
    data = serializer_input(CollateralSerializer, request.POST, message=COLLATERAL_INVALID)
    services.collateral_add(application=application, by=request.user, **data)
    return _("押品已登记，建议额度已重算 / Collateral recorded; the recommended limit was recomputed.")


def collateral_remove(request, application) -> str:
    item = Collateral.objects.filter(application=application, pk=request.POST.get("item") or 0).first()
    if item is None:
        raise Http404
    services.collateral_remove(collateral=item, by=request.user)
    return _("押品已删除 / Collateral removed.")


def guarantor_add(request, application) -> str:
    data = serializer_input(GuarantorSerializer, request.POST, message=GUARANTOR_INVALID)
    guarantor = services.guarantor_add(application=application, by=request.user, **data)
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
    data = serializer_input(CaseNoteSerializer, request.POST, message=NOTE_INVALID)
    services.case_note_add(application=application, by=request.user, **data)
    return _("笔记已保存 / Note saved.")


CASE_ACTIONS: dict[str, Callable] = {
    "collateral": collateral_add,
    "collateral_remove": collateral_remove,
    "guarantor": guarantor_add,
    "guarantor_remove": guarantor_remove,
    "note": note_add,
}


@permission_required("loanservice.signed_in")
@require_POST
def info_request_upload(request, pk):
    """补充资料: the applicant uploads a document the RM asked for (portal, while awaiting information)."""

    application = get_object_or_404(applications_visible_to(request.user).filter(applicant=request.user), pk=pk)
    try:
        data = form_input(DocumentUploadForm, request.POST, files=request.FILES, message=UPLOAD_INCOMPLETE)
        document_upload(application=application, user=request.user, requirement_code=data["requirement"],
                        name=data["file"].name, content=data["file"].read(), ip=request.META.get("REMOTE_ADDR"))
        messages.success(request, _("材料已上传 / Document uploaded."))
    except ApplicationError as exc:
        messages.error(request, " ".join(str(m) for m in [exc.message, *[m for msgs in exc.errors.values() for m in msgs]]))
    except Conflict as exc:
        messages.error(request, exc.message)
    return redirect("portal:application", pk=pk)
