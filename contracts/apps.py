from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "合同与放款 / Contracts"

    def ready(self):
        from . import tasks  # noqa: F401  registers the core-banking task with Celery in web and worker processes
