from django.apps import AppConfig


class PostloanConfig(AppConfig):
    name = "postloan"
    verbose_name = "贷后管理 / Post-loan"
