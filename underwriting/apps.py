from django.apps import AppConfig


class UnderwritingConfig(AppConfig):
    name = "underwriting"
    verbose_name = "授信审查 / Underwriting"

    def ready(self):
        from loanservice import refcache

        # Cached per process (loanservice.refcache): a write to these bumps the generation.
        refcache.watch("underwriting.PricingPolicy", "underwriting.ScorecardModel", "underwriting.LoanPrimeRate",
                       "underwriting.DataSourceConfig")
