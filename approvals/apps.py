from django.apps import AppConfig

from loanservice import refcache


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "审批 / Approvals"

    def ready(self):
        # Cached per process (loanservice.refcache): a write to these bumps the generation.
        refcache.watch("approvals.AuthorityMatrixVersion", "approvals.AuthorityRule", "approvals.ReferralRule")
