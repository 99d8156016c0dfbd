"""Which data may be used to select and score prospects who have given the bank no consent (docs/analytics.md)."""

from django.db import migrations

POLICY = [
    ("internal", True, "本行自有数据：结算账户协议约定可用于本行产品推介 / The bank's own records; the account agreement allows "
                       "offering the bank's products"),
    ("registry", True, "公开的企业登记公示信息 / Public business-registration information"),
    ("judicial", True, "公开的裁判文书与失信被执行人名单 / Public court records and the dishonest-debtor list"),
    ("tax", False, "纳税数据须经企业授权，仅用于其申请的贷款审查 / Tax data needs the enterprise's authorisation, for the loan it "
                   "applies for only"),
    ("social_security", False, "社保数据须经企业授权 / Social-security data needs the enterprise's authorisation"),
    ("customs", False, "海关数据须经企业授权 / Customs data needs the enterprise's authorisation"),
    ("credit_bureau", False, "征信报告不得用于营销（《征信业管理条例》），须经授权且仅用于信贷审查 / The credit report may not be "
                             "used for marketing; only with authorisation, for credit review"),
]


def seed(apps, schema_editor):
    Policy = apps.get_model("marketing", "MarketingDataPolicy")
    for source, allowed, basis in POLICY:
        Policy.objects.get_or_create(source=source, defaults={"allowed": allowed, "basis": basis})


class Migration(migrations.Migration):
    dependencies = [("marketing", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
