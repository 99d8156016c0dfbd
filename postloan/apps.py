from django.apps import AppConfig


class PostloanConfig(AppConfig):
    name = "postloan"
    verbose_name = "贷后管理 / Post-loan"

    def ready(self):
        from loanservice import refcache

        from . import tasks  # noqa: F401  (registers the nightly Celery tasks with the worker)

        # Servicing policy and prepayment rules, cached per process (loanservice.refcache).
        refcache.watch("postloan.PostloanPolicy", "postloan.PrepaymentRule")
