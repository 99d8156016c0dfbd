"""An audit event appended in one statement (issue #20): the chain head keeps the hash before its last link too, and
each event says which hash definition it follows (1: everything in one JSON body, the events before this migration;
2: the content's digest, then the link to the head computed by the database; loanservice/audit.py).

Nothing already written changes. On SQLite, adding a column rebuilds the table and drops its trigger: sealed again.
"""

from django.db import migrations, models

TABLE = "loanservice_auditevent"


def reseal_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
            cursor.execute(f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
                           f"BEGIN SELECT RAISE(ABORT, 'append-only table {TABLE}: UPDATE refused'); END")


class Migration(migrations.Migration):

    dependencies = [
        ('loanservice', '0006_merge_trust'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditchainhead',
            name='prev_hash',
            field=models.CharField(blank=True, default='', help_text='the hash of the link before the last (an append returns both at once)', max_length=64),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='hash_version',
            field=models.PositiveSmallIntegerField(default=1, verbose_name='哈希版本 hash version'),
        ),
        migrations.RunPython(reseal_sqlite, migrations.RunPython.noop),
    ]
