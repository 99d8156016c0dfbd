from django.apps import AppConfig

from loanservice import refcache


class PostloanConfig(AppConfig):
    name = "postloan"
    verbose_name = "贷后管理 / Post-loan"

    def ready(self):
        from . import tasks  # noqa: F401  (registers the nightly Celery tasks with the worker)

        # Servicing policy and prepayment rules, cached per process (loanservice.refcache).
        refcache.watch("postloan.PostloanPolicy", "postloan.PrepaymentRule")
