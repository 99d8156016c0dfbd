"""`python manage.py sla_check`: the beat's SLA watch, for the embedded default (no Celery beat)."""

from django.core.management.base import BaseCommand

from loanservice.sla_monitor import sla_breaches_process


class Command(BaseCommand):
    help = "记录超时案件、通知负责人并升级给上级 / Record SLA breaches, notify the owners and escalate to supervisors."

    def handle(self, *args, **options):
        result = sla_breaches_process()
        self.stdout.write(f"breached: {result['breached']}")
