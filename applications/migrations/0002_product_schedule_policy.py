# Product-level repayment schedule policy (issue #6): grace months, fixed repayment day, due-date rule.

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('applications', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='loanproduct',
            name='grace_months',
            field=models.PositiveSmallIntegerField(default=0, help_text='等额本息/等额本金前的只付息月数，适合季节性经营 / interest-only months before amortising', verbose_name='宽限期(月，只付息) grace months'),
        ),
        migrations.AddField(
            model_name='loanproduct',
            name='repayment_day',
            field=models.PositiveSmallIntegerField(blank=True, help_text="每月固定还款日(1-31)，为空表示放款日对日 / day of month; empty: the value date's day", null=True, validators=[django.core.validators.MinValueValidator(1), django.core.validators.MaxValueValidator(31)], verbose_name='固定还款日 repayment day'),
        ),
        migrations.AddField(
            model_name='loanproduct',
            name='due_date_rule',
            field=models.CharField(choices=[('none', '不调整 no adjustment'), ('following', '顺延至下一工作日 following business day'), ('modified_following', '顺延，跨月则提前 modified following'), ('preceding', '提前至上一工作日 preceding business day')], default='following', max_length=20, verbose_name='非工作日还款日调整 due-date rule'),
        ),
    ]
