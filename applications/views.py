"""Public product pages: what it is, the checklist, the admission criteria and the negative list."""

from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from .models import AdmissionCriterion
from .selectors import products_published


def product_list(request):
    return render(request, "products/list.html", {"products": products_published()})


def product_detail(request, code):
    product = get_object_or_404(products_published(), code=code)
    criteria = AdmissionCriterion.objects.filter(is_active=True).filter(Q(products=None) | Q(products=product)).distinct()
    return render(request, "products/detail.html", {
        "product": product,
        "checklist": product.checklist.all(),
        "admission": [c for c in criteria if c.kind == AdmissionCriterion.ADMISSION],
        "negative": [c for c in criteria if c.kind == AdmissionCriterion.NEGATIVE],
    })
