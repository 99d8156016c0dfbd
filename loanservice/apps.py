from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class LoanserviceConfig(AppConfig):
    """The kernel: audit trail, SLA clocks, business calendar, roles, notifications (docs/architecture.md)."""

    name = "loanservice"
    verbose_name = "核心 / Kernel"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import labels, middleware, refcache

        labels.register_model("branch", "loanservice.Branch")
        # Policy and reference data cached per process (loanservice.refcache); a write to these bumps the generation.
        refcache.connect()
        refcache.watch("loanservice.BusinessDate", "loanservice.Branch", "loanservice.CalendarDay", "loanservice.CalendarYear",
                       "loanservice.SlaTarget")
        user_logged_in.connect(middleware.last_seen_at_login, dispatch_uid="loanservice.last_seen_at_login")


class AdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the project's default site (loanservice.admin_site.AdminSite)."""

    default = False  # not the kernel app's own config
    default_site = "loanservice.admin_site.AdminSite"
