"""RM pages for precision marketing: the prospect queue, a prospect with its data and contacts, contact outcomes,
invitations; partner list import and the settlement-customer derivation. Thin: services decide."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from applications.models import LoanProduct
from loanservice.errors import ApplicationError, error_text
from loanservice.roles import can, permission_required

from . import services
from .models import LIST_KINDS, ContactAttempt, Prospect, ProspectList
from .selectors import prospect_queue, prospects_visible_to


@permission_required("marketing.work")
def queue(request):
    status = request.GET.get("status", "")
    qs = prospect_queue(request.user, status=status if status in Prospect.Status.values else "",
                        include_closed=request.GET.get("closed") == "1")
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    can_import = can(request.user, "marketing.import_list")
    return render(request, "marketing/queue.html", {
        "page": page, "statuses": Prospect.Status.choices, "status": status,
        "lists": ProspectList.objects.select_related("imported_by")[:10] if can_import else [],
        "can_import": can_import, "can_derive": can(request.user, "marketing.derive"),
        "kinds": [k for k in LIST_KINDS if k[0] != "settlement"],
    })


@permission_required("marketing.work")
def prospect_page(request, pk):
    prospect = get_object_or_404(prospect_queue(request.user, include_closed=True), pk=pk)
    return render(request, "marketing/prospect.html", {
        "p": prospect, "contacts": prospect.contacts.select_related("by")[:50], "channels": ContactAttempt.CHANNELS,
        "outcomes": ContactAttempt.OUTCOMES, "products": LoanProduct.objects.filter(is_active=True),
        "invite_url": request.session.pop(f"invite-{prospect.pk}", ""),
        "is_owner": can(request.user, "marketing.own_prospect", prospect),
    })


@permission_required("marketing.work")
@require_POST
def contact(request, pk):
    prospect = get_object_or_404(prospects_visible_to(request.user), pk=pk)
    try:
        services.contact_record(prospect=prospect, by=request.user, channel=request.POST.get("channel", ""),
                                outcome=request.POST.get("outcome", ""), note=request.POST.get("note", ""),
                                next_action_on=request.POST.get("next_action_on") or None)
        messages.success(request, _("联系记录已保存 / Contact recorded."))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("marketing:prospect", pk=pk)


@permission_required("marketing.work")
@require_POST
def invite(request, pk):
    prospect = get_object_or_404(prospects_visible_to(request.user), pk=pk)
    product = LoanProduct.objects.filter(code=request.POST.get("product", ""), is_active=True).first()
    try:
        path = services.invitation_create(prospect=prospect, by=request.user, product=product)
        request.session[f"invite-{pk}"] = request.build_absolute_uri(path)
        messages.success(request, _("邀请链接已生成，请发送给客户 / Invitation link ready: send it to the customer."))
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("marketing:prospect", pk=pk)


@permission_required("marketing.import_list")
def import_list(request):
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ApplicationError(_("请选择CSV文件 / Choose a CSV file."), errors={"file": [_("此项为必填项 / This field is required.")]})
            plist = services.prospect_list_import(kind=request.POST.get("kind", ""), partner_name=request.POST.get("partner_name", ""),
                                                  file_name=upload.name, content=upload.read(), by=request.user)
            messages.success(request, _("已导入 %(i)s 条，重复 %(d)s 条，错误 %(r)s 条 / Imported %(i)s, duplicates %(d)s, rejected %(r)s")
                             % {"i": plist.rows_imported, "d": plist.rows_duplicate, "r": plist.rows_rejected})
            for err in plist.errors[:20]:
                messages.error(request, _("第%(row)s行 %(field)s：%(message)s") % err)
        except ApplicationError as exc:
            messages.error(request, error_text(exc))
    return redirect("marketing:queue")


@permission_required("marketing.derive")
@require_POST
def derive(request):
    try:
        plist = services.prospects_derive_from_settlement(by=request.user)
        messages.success(request, _("从结算客户中找到 %(n)s 个潜在客户 / %(n)s prospects found among settlement customers")
                         % {"n": plist.rows_imported})
    except ApplicationError as exc:
        messages.error(request, error_text(exc))
    return redirect("marketing:queue")
