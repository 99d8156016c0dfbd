from django.apps import AppConfig


class ApplicationsConfig(AppConfig):
    name = "applications"
    verbose_name = "申请受理 / Intake"

    def ready(self):
        from . import labels

        labels.register_labels()
