"""GET /api/v1/analytics/summary/ (staff): the whole summary as JSON, filtered like the pages; GET
/api/v1/analytics/model-risk/ (risk, admin, approvers): drift states, back-test and PD term structure."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from loanservice.api import rule_permission
from loanservice.errors import ApplicationError

from .model_risk import model_risk_summary
from .selectors import analytics_summary, filters_parse

FILTER_PARAMS = [
    OpenApiParameter("date_from", OpenApiTypes.DATE, description="start of the period (default: 12 months before date_to)"),
    OpenApiParameter("date_to", OpenApiTypes.DATE, description="end of the period, inclusive (default: today)"),
    OpenApiParameter("product", OpenApiTypes.STR, description="product code"),
    OpenApiParameter("branch", OpenApiTypes.STR, description="branch code"),
    OpenApiParameter("channel", OpenApiTypes.STR, description="application channel"),
]


class SummaryView(APIView):
    permission_classes = [rule_permission("analytics.summary")]

    @extend_schema(parameters=FILTER_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request):
        parsed = filters_parse(request.query_params, user=request.user)
        if parsed.errors:
            raise ApplicationError("筛选条件无效 / Invalid filters.", errors=parsed.errors)
        return Response(analytics_summary(parsed.filters))


class ModelRiskView(APIView):
    """Model risk: the champion's drift per month (pooled windows, states stable / watch / shift / insufficient),
    the back-test of the grades' PDs (12-month default rate, binomial test, traffic light green / yellow / red /
    insufficient; Gini/AUC; champion vs challenger) and the PD term structure in force (per grade the 12-month and
    lifetime PDs as decimal fractions, basis book or scorecard). Definitions: docs/analytics.md."""

    permission_classes = [rule_permission("analytics.view")]

    @extend_schema(parameters=FILTER_PARAMS, responses=OpenApiTypes.OBJECT,
                   description="Drift states, back-test traffic lights and the PD term structure (docs/analytics.md, Model risk).")
    def get(self, request):
        parsed = filters_parse(request.query_params, user=request.user)
        if parsed.errors:
            raise ApplicationError("筛选条件无效 / Invalid filters.", errors=parsed.errors)
        return Response(model_risk_summary(parsed.filters))
