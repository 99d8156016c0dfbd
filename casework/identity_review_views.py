"""Operations' review of agents' powers of attorney (授权委托书审核): the queue, the document, the decision. The
rules (who may review, four eyes) are applications.services.identity_review_decide's; these views stay thin."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from applications import services as intake
from applications.models import IdentityVerification
from applications.selectors import identity_reviews_pending
from loanservice.api import client_ip
from loanservice.errors import ApplicationError, Conflict, error_text
from loanservice.roles import permission_required
from loanservice.text import in_language


def _agent_verification(pk) -> IdentityVerification:
    return get_object_or_404(IdentityVerification.objects.select_related("enterprise", "user"), pk=pk,
                             method=IdentityVerification.AGENT)


@permission_required("applications.review_identity")
def review_queue(request):
    """Agents waiting for their power of attorney to be reviewed, oldest first."""
    return render(request, "staff/identity_reviews.html", {"pending": identity_reviews_pending()})


@permission_required("applications.review_identity")
def power_of_attorney(request, pk):
    record = _agent_verification(pk)
    data = intake.identity_power_of_attorney_read(verification=record, by=request.user, ip=client_ip(request))
    kind = "application/pdf" if data.startswith(b"%PDF") else "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    response = HttpResponse(data, content_type=kind)
    response["Content-Disposition"] = f'inline; filename="power-of-attorney-{record.pk}"'
    return response


@require_POST
@permission_required("applications.review_identity")
def review_decide(request, pk):
    record = _agent_verification(pk)
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, in_language(_("请选择通过或不通过 / Choose approve or reject.")))
        return redirect("staff:identity_reviews")
    try:
        intake.identity_review_decide(verification=record, by=request.user, approve=decision == "approve",
                                      reason=request.POST.get("reason", ""), ip=client_ip(request))
        messages.success(request, in_language(_("已记录审核结果 / The review is recorded.")))
    except (ApplicationError, Conflict) as exc:
        messages.error(request, error_text(exc))
    except PermissionDenied as exc:
        messages.error(request, in_language(str(exc)))
    return redirect("staff:identity_reviews")
