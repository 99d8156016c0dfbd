"""Close of business rewrites every open loan's row (its last closed date) and the current installment's row (its
accrued interest) each day. Neither column is indexed, so with room left on the page Postgres writes the new version
beside the old one (a HOT update) and leaves the loan's 18 indexes alone; at the default fillfactor of 100 the pages
are full and every daily rewrite updates every index. Pages are now filled to 80 % (Postgres only; the existing rows
move as they are rewritten and vacuumed)."""

from django.db import migrations

TABLES = ("postloan_loan", "postloan_installment")


def fillfactor(percent: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for table in TABLES:
                schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")
    return apply


class Migration(migrations.Migration):

    dependencies = [
        ("postloan", "0011_merge_credit_lines"),
    ]

    operations = [
        migrations.RunPython(fillfactor(80), fillfactor(100)),
    ]
