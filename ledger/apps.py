from django.apps import AppConfig

from loanservice import refcache


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "总账 / General ledger"

    def ready(self):
        # The chart, the mapping, VAT rules and closed periods, cached per process (loanservice.refcache).
        refcache.watch("ledger.Account", "ledger.AccountMapping", "ledger.VatRule", "ledger.VatExemption", "ledger.LedgerPeriod")
