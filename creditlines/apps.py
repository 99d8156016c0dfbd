from django.apps import AppConfig


class CreditlinesConfig(AppConfig):
    name = "creditlines"
    verbose_name = "循环额度 / Credit lines"

    def ready(self):
        from . import tasks  # noqa: F401  (registers the nightly Celery task with the worker)
