"""The finance pages (staff): /staff/finance/…"""

from django.urls import path, re_path

from . import finance_views as views

app_name = "finance"
urlpatterns = [
    path("", views.finance_home, name="home"),
    path("cob/", views.cob_page, name="cob"),
    path("cob/run/", views.cob_run, name="cob_run"),
    path("trial-balance/", views.trial_balance_page, name="trial_balance"),
    re_path(r"^trial-balance/(?P<fmt>csv|xlsx)/$", views.trial_balance_page, name="trial_balance_file"),
    path("reconciliation/", views.reconciliation_page, name="reconciliation"),
    path("reconciliation/check/", views.reconciliation_check, name="reconciliation_check"),
    re_path(r"^reconciliation/(?P<fmt>csv|xlsx)/$", views.reconciliation_page, name="reconciliation_file"),
    path("asset-quality/", views.asset_quality_page, name="asset_quality"),
    re_path(r"^asset-quality/(?P<fmt>csv|xlsx)/$", views.asset_quality_page, name="asset_quality_file"),
    path("provisions/", views.provisions_page, name="provisions"),
    path("core-banking/", views.core_banking_page, name="core_banking"),
    path("core-banking/files/", views.core_file_receive, name="core_file_receive"),
    path("core-banking/files/<int:pk>/", views.core_file_page, name="core_file"),
    re_path(r"^provisions/overlays/(?P<pk>[0-9]+)/(?P<action>submit|approve|reject)/$", views.overlay_action,
            name="overlay_action"),
]
