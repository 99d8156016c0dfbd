"""Recompute the provisional due dates of a year once its official holidays are loaded (the State Council publishes
the next year's schedule each November): `manage.py due_dates_recompute 2027`."""

from django.core.management.base import BaseCommand

from postloan.services import schedules_recompute_for_years


class Command(BaseCommand):
    help = "Recompute unpaid installments' due dates on the given years by each contract's holiday rule."

    def add_arguments(self, parser):
        parser.add_argument("years", nargs="+", type=int)

    def handle(self, *args, years, **options):
        result = schedules_recompute_for_years(years=years)
        self.stdout.write(f"years {result['years']}: {result['moved']} due dates moved on {len(result['loans'])} loans")
