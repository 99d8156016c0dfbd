from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "审批 / Approvals"

    def ready(self):
        from loanservice import refcache

        # Cached per process (loanservice.refcache): a write to these bumps the generation.
        refcache.watch("approvals.AuthorityMatrixVersion", "approvals.AuthorityRule", "approvals.ReferralRule")
