"""The bank's signature over each daily audit anchor (docs/security.md), append-only like the anchors."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

TABLE = "loanservice_auditanchorsignature"
# As in 0003_audit_hash_chain (CREATE OR REPLACE: the same function, defined again so this migration stands alone).
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION loanservice_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def seal(apps, schema_editor):
    """The database refuses UPDATE and DELETE on the signatures, as on the anchors (0003_audit_hash_chain)."""
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(PG_FUNCTION)
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
            cursor.execute(f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
                           "FOR EACH ROW EXECUTE FUNCTION loanservice_append_only()")
        elif vendor == "sqlite":
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
            cursor.execute(f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
                           f"BEGIN SELECT RAISE(ABORT, 'append-only table {TABLE}: UPDATE refused'); END")


def unseal(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        elif vendor == "sqlite":
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")


class Migration(migrations.Migration):

    dependencies = [
        ('loanservice', '0003_audit_hash_chain'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditAnchorSignature',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('algorithm', models.CharField(default='ecdsa-p256-sha256', max_length=30)),
                ('signature', models.TextField(help_text='base64')),
                ('certificate_pem', models.TextField()),
                ('signed_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('anchor', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='signature', to='loanservice.auditanchor')),
            ],
            options={
                'verbose_name': '审计日锚签名 audit anchor signature',
                'verbose_name_plural': '审计日锚签名 audit anchor signatures',
            },
        ),
        migrations.RunPython(seal, unseal),
    ]
