from django.core.management.base import BaseCommand

from casework.reference_data import seed_reference_data


class Command(BaseCommand):
    help = "Load the reference data (criteria, reason codes, authority matrix, SLA targets, calendar, scorecard). Idempotent."

    def handle(self, *args, **options):
        seed_reference_data()
        self.stdout.write(self.style.SUCCESS("reference data loaded"))
