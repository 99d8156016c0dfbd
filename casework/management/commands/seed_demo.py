from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from casework.demo import seed_demo


class Command(BaseCommand):
    help = "Create products, branches, one demo user per role and cases in every stage (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="demo-pass")
        parser.add_argument("--force", action="store_true", help="allow with DEBUG off (never on a real bank's data)")

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo creates users with a known password; refused with DEBUG off (use --force).")
        users = seed_demo(password=options["password"], close_of_business=True)  # a closed day for the finance pages
        self.stdout.write(self.style.SUCCESS(f"demo data ready; users: {', '.join(sorted(users))} (password {options['password']!r})"))
