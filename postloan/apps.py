from django.apps import AppConfig


class PostloanConfig(AppConfig):
    name = "postloan"
    verbose_name = "贷后管理 / Post-loan"

    def ready(self):
        from . import receivers, tasks  # noqa: F401  (registers the nightly Celery tasks with the worker)

        receivers.connect()  # a year's holidays loaded in admin: its provisional due dates recomputed
        from loanservice import refcache

        # Servicing policy and prepayment rules, cached per process (loanservice.refcache).
        refcache.watch("postloan.PostloanPolicy", "postloan.PrepaymentRule")
