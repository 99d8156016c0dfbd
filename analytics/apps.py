from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "经营分析 / Analytics"

    def ready(self):
        from . import labels

        labels.register_labels()
