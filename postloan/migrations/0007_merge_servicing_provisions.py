# The servicing-to-the-contract and provisions branches of issue #17 each added a 0006.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('postloan', '0006_loan_book_contract_terms'),
        ('postloan', '0006_provisions_and_reconciliation'),
    ]

    operations = [
    ]
