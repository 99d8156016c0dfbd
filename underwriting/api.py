"""Underwriting API: snapshot push for integrations, and the RM's due diligence on a case (collateral,
guarantors, notes, the enterprise profile). Thin: every write calls a service."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from applications.models import Enterprise, LoanApplication
from applications.selectors import applications_visible_to
from loanservice.api import client_ip, rule_permission, serializer_input
from loanservice.audit import audit_record
from loanservice.masking import mask_personal, mask_value
from loanservice.money import money_text

from . import services
from .models import CaseNote, Collateral, Guarantor
from .selectors import application_score_of, enterprise_profile
from .serializers import (
    COLLATERAL_INVALID,
    GUARANTOR_INVALID,
    NOTE_INVALID,
    CaseNoteSerializer,
    CollateralSerializer,
    GuarantorSerializer,
)

CaseStaff = rule_permission("underwriting.case_file")


class SnapshotPushView(APIView):
    permission_classes = [rule_permission("underwriting.pull_data")]

    @extend_schema(request=inline_serializer("SnapshotIn", {"as_of": serializers.DateField(), "payload": serializers.DictField()}),
                   responses={201: inline_serializer("SnapshotOut", {"id": serializers.IntegerField(), "source": serializers.CharField(),
                                                                     "as_of": serializers.DateField(), "payload": serializers.DictField()})})
    def put(self, request, pk, source):
        enterprise = get_object_or_404(Enterprise, pk=pk)
        snap = services.snapshot_push(enterprise=enterprise, source=source, as_of=request.data.get("as_of"),
                                      payload=request.data.get("payload"), by=request.user, ip=client_ip(request))
        return Response({"id": snap.pk, "source": snap.source, "as_of": snap.as_of, "payload": snap.payload},
                        status=status.HTTP_201_CREATED)


def _case(request, pk) -> LoanApplication:
    return get_object_or_404(applications_visible_to(request.user), pk=pk)


def collateral_json(item: Collateral) -> dict:
    return {"id": item.pk, "kind": item.kind, "description": item.description, "owner_name": item.owner_name,
            "certificate_no": item.certificate_no, "valuation": money_text(item.valuation), "appraiser": item.appraiser,
            "appraised_on": item.appraised_on, "ltv": f"{item.ltv:.4f}", "lendable_value": money_text(item.lendable_value),
            "added_by": item.added_by.username, "created_at": item.created_at}


def guarantor_json(item: Guarantor) -> dict:
    return {"id": item.pk, "kind": item.kind, "name": item.name, "uscc": item.uscc,
            "id_number": mask_value(item.id_number, "id_number"),  # revealed on request: /api/v1/personal-data/reveal/
            "relationship": item.relationship, "guaranteed_amount": money_text(item.guaranteed_amount),
            "prescreen": {"passed": item.prescreen_passed, "reasons": item.prescreen.get("reasons", []),
                          "gaps": item.prescreen.get("gaps", [])},
            "created_at": item.created_at}


def _limit(application: LoanApplication) -> dict:
    score = application_score_of(application)
    return {"recommended_limit": money_text(score.recommended_limit) if score else None,
            "limit_basis": score.limit_basis if score else {}}


CollateralList = inline_serializer("CollateralList", {"items": serializers.ListField(child=serializers.DictField()),
                                                     "recommended_limit": serializers.CharField(allow_null=True),
                                                     "limit_basis": serializers.DictField()})
LimitOut = inline_serializer("LimitOut", {"recommended_limit": serializers.CharField(allow_null=True),
                                          "limit_basis": serializers.DictField()})


class CollateralListView(APIView):
    permission_classes = [CaseStaff]

    @extend_schema(responses=CollateralList)
    def get(self, request, pk):
        application = _case(request, pk)
        items = Collateral.objects.filter(application=application).select_related("added_by")
        return Response({"items": [collateral_json(c) for c in items], **_limit(application)})

    @extend_schema(request=CollateralSerializer, responses={201: inline_serializer("CollateralOut", {"id": serializers.IntegerField()})})
    def post(self, request, pk):
        application = _case(request, pk)
        data = serializer_input(CollateralSerializer, request.data, message=COLLATERAL_INVALID)
        item = services.collateral_add(application=application, by=request.user, **data)
        return Response({**collateral_json(item), **_limit(application)}, status=status.HTTP_201_CREATED)


class CollateralItemView(APIView):
    permission_classes = [CaseStaff]

    @extend_schema(request=None, responses=LimitOut)
    def delete(self, request, pk, item):
        application = _case(request, pk)
        services.collateral_remove(collateral=get_object_or_404(Collateral, application=application, pk=item), by=request.user)
        return Response(_limit(application))


class GuarantorListView(APIView):
    permission_classes = [CaseStaff]

    @extend_schema(responses=inline_serializer("GuarantorList", {"items": serializers.ListField(child=serializers.DictField())}))
    def get(self, request, pk):
        application = _case(request, pk)
        return Response({"items": [guarantor_json(g) for g in Guarantor.objects.filter(application=application)]})

    @extend_schema(request=GuarantorSerializer, responses={201: inline_serializer("GuarantorOut", {"id": serializers.IntegerField()})})
    def post(self, request, pk):
        application = _case(request, pk)
        data = serializer_input(GuarantorSerializer, request.data, message=GUARANTOR_INVALID)
        item = services.guarantor_add(application=application, by=request.user, **data)
        return Response(guarantor_json(item), status=status.HTTP_201_CREATED)


class GuarantorItemView(APIView):
    permission_classes = [CaseStaff]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk, item):
        application = _case(request, pk)
        services.guarantor_remove(guarantor=get_object_or_404(Guarantor, application=application, pk=item), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


NoteOut = inline_serializer("NoteOut", {"id": serializers.IntegerField(), "author": serializers.CharField(),
                                        "text": serializers.CharField(), "created_at": serializers.DateTimeField()})


class CaseNoteListView(APIView):
    permission_classes = [CaseStaff]

    @extend_schema(responses={200: serializers.ListSerializer(child=NoteOut)})
    def get(self, request, pk):
        application = _case(request, pk)
        notes = CaseNote.objects.filter(application=application).select_related("author")
        return Response([{"id": n.pk, "author": n.author.username, "text": n.text, "created_at": n.created_at} for n in notes])

    @extend_schema(request=CaseNoteSerializer, responses={201: NoteOut})
    def post(self, request, pk):
        application = _case(request, pk)
        data = serializer_input(CaseNoteSerializer, request.data, message=NOTE_INVALID)
        note = services.case_note_add(application=application, by=request.user, **data)
        return Response({"id": note.pk, "author": note.author.username, "text": note.text, "created_at": note.created_at},
                        status=status.HTTP_201_CREATED)


class ProfileView(APIView):
    """企业画像 of a case: the derived features, the snapshots the score used (dated, by id) and the gaps."""

    permission_classes = [CaseStaff]

    @extend_schema(responses=inline_serializer("ProfileOut", {"features": serializers.DictField(),
                                                              "snapshots": serializers.DictField(),
                                                              "gaps": serializers.DictField()}))
    def get(self, request, pk):
        application = _case(request, pk)
        score = application_score_of(application)
        profile = enterprise_profile(application.enterprise, score=score)
        audit_record(actor=request.user, action="profile.view", obj=application, ip=client_ip(request))
        return Response({
            "features": profile["features"],
            "snapshots": {s: None if snap is None else {"id": snap.pk, "as_of": snap.as_of, "provider": snap.provider,
                                                         "fetched_at": snap.fetched_at, "payload": mask_personal(snap.payload)}
                          for s, snap in profile["snapshots"].items()},
            "gaps": profile["gaps"],
        })
