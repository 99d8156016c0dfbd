from django.apps import AppConfig

from loanservice import refcache


class UnderwritingConfig(AppConfig):
    name = "underwriting"
    verbose_name = "授信审查 / Underwriting"

    def ready(self):
        # Cached per process (loanservice.refcache): a write to these bumps the generation.
        refcache.watch("underwriting.PricingPolicy", "underwriting.ScorecardModel", "underwriting.LoanPrimeRate",
                       "underwriting.DataSourceConfig")
