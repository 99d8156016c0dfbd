from django.apps import AppConfig


class LoanserviceConfig(AppConfig):
    """The kernel: audit trail, SLA clocks, business calendar, roles, notifications (docs/architecture.md)."""

    name = "loanservice"
    verbose_name = "核心 / Kernel"
