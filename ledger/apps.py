from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "总账 / General ledger"

    def ready(self):
        from loanservice import refcache

        # The chart, the mapping, VAT rules and closed periods, cached per process (loanservice.refcache).
        refcache.watch("ledger.Account", "ledger.AccountMapping", "ledger.VatRule", "ledger.VatExemption", "ledger.LedgerPeriod")
