"""Links that services put in notifications and invitations are reversed from route names, so they follow the
URL configuration (here: the site served under a path prefix, as behind a reverse proxy) and always resolve."""

from __future__ import annotations

import pytest
from django.urls import resolve, set_script_prefix

from tests.approvals_support import fast_passwords  # noqa: F401
from tests.factories import FastTrackApplicationFactory, PendingApprovalFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

PREFIX = "/bank/"


@pytest.fixture
def served_under_prefix():
    set_script_prefix(PREFIX)
    yield PREFIX
    set_script_prefix("/")


def _routes_of_notifications() -> set[str]:
    from loanservice.models import Notification

    routes = set()
    for url in Notification.objects.exclude(url="").values_list("url", flat=True):
        assert url.startswith(PREFIX), url
        routes.add(resolve(url[len(PREFIX) - 1:]).view_name)
    return routes


def test_case_notifications_link_to_named_routes(products, org, served_under_prefix):
    FastTrackApplicationFactory(seed=1)
    PendingApprovalFactory(seed=9)
    assert {"portal:application", "staff:review"} <= _routes_of_notifications()


def test_the_invitation_link_is_the_portals_apply_route(products, org, served_under_prefix):
    from marketing.services import invitation_create, prospect_list_import
    from tests.test_marketing_prospects import _csv, _shanghai_usccs

    imported = prospect_list_import(kind="industrial_park", partner_name="张江园区", file_name="park.csv", by=org["demo_rm"],
                                    content=_csv([f"{_shanghai_usccs(1)[0]},上海甲公司,王一,13900000001,C3399,8000000,40"]))
    prospect = imported.prospects.get()
    type(prospect).objects.filter(pk=prospect.pk).update(status="new")  # a lead, whatever its score (this is about the link)
    url = invitation_create(prospect=prospect, by=org["demo_rm"], product=products["xinmiaodai"])
    path, _sep, query = url.partition("?")
    assert path == f"{PREFIX}portal/apply/xinmiaodai/" and query.startswith("invite=")
    assert resolve(path[len(PREFIX) - 1:]).view_name == "portal:apply"
