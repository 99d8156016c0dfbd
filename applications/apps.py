from django.apps import AppConfig

from loanservice import refcache


class ApplicationsConfig(AppConfig):
    name = "applications"
    verbose_name = "申请受理 / Intake"

    def ready(self):
        from . import labels

        labels.register_labels()
        # Products, their checklists and admission criteria, and the manual negative list, cached per process
        # (loanservice.refcache).
        refcache.watch("applications.LoanProduct", "applications.DocumentRequirement", "applications.AdmissionCriterion",
                       "applications.NegativeListEntry")
