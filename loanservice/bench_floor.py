"""The stack's floor (issue #20): the least an authenticated write can cost on this deployment — one row, one audit
event, one no-op Celery task dispatched on commit — so `make bench` can say how close a submission or a drawdown
comes to what gunicorn, Postgres, Redis and a worker can do at all.

Mounted only when the setting BENCH_FLOOR is on (config.urls_bench; `bench/common.py` sets it for the benchmark
stack): never in production URLs, and the view answers 404 whenever the setting is off.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .audit import audit_record
from .dispatch import dispatch_on_commit
from .models import Notification


def floor_write(*, user) -> Notification:
    """One row (a notification to the caller), one audit event, one no-op task on commit."""
    from .tasks import bench_noop

    with transaction.atomic():
        note = Notification.objects.create(user=user, kind="bench_floor", title="bench floor")
        audit_record(actor=user, action="bench.floor", obj=note)
        dispatch_on_commit(bench_noop, note.pk)
    return note


@extend_schema(exclude=True)
class FloorView(APIView):
    permission_classes = [IsAuthenticated]

    def post(self, request):
        if not getattr(settings, "BENCH_FLOOR", False):
            raise Http404
        note = floor_write(user=request.user)
        return Response({"id": note.pk}, status=status.HTTP_201_CREATED)
