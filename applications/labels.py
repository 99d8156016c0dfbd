"""Names of the intake's codes for the pages (loanservice.labels): audit events, products, checklist documents."""

from django.utils.translation import gettext_lazy as _

from loanservice import labels

EVENTS = {
    "user.register": _("注册账户 registered an account"),
    "enterprise.create": _("登记企业信息 registered the enterprise"),
    "enterprise.reassign_rm": _("更换客户经理 changed the relationship manager"),
    "prequalify.check": _("预审测额 pre-qualification check"),
    "registry.lookup": _("查询工商登记信息 registry lookup"),
    "application.create": _("创建申请 created the application"),
    "application.update_draft": _("保存申请草稿 saved the draft"),
    "application.submit": _("提交申请 submitted the application"),
    "application.prescreen_decline": _("预审未通过 pre-screen declined"),
    "application.prescreen_refresh": _("重新预审 pre-screen refreshed"),
    "application.limit_refresh": _("更新额度测算 limit recalculated"),
    "application.score": _("完成评分 scored"),
    "application.route": _("分配审批路径 routed for decision"),
    "application.decision_time": _("记录决策用时 decision time recorded"),
    "application.site_visit": _("完成走访 site visit recorded"),
    "application.request_info": _("要求补充资料 information requested"),
    "application.send_to_approval": _("提交审批 sent for approval"),
    "application.approve": _("批准 approved"),
    "application.decline": _("拒绝 declined"),
    "application.return_to_rm": _("退回客户经理 returned to the relationship manager"),
    "application.accept_offer": _("接受批复 accepted the offer"),
    "application.expire": _("批复过期 offer expired"),
    "application.mark_signed": _("合同已签署 contracts signed"),
    "application.mark_disbursed": _("已放款 disbursed"),
    "application.withdraw": _("撤回申请 withdrew the application"),
    "consent.grant": _("授权数据查询 authorised a data check"),
    "consent.withdraw": _("撤回数据查询授权 withdrew the data authorisation"),
    "identity.verify": _("身份核验 identity verification"),
    "document.upload": _("上传材料 uploaded a document"),
    "document.delete": _("删除材料 deleted a document"),
    "document.download": _("下载材料 downloaded a document"),
}


def _name(row) -> str:
    return row.tr("name")


def register_labels() -> None:
    labels.register("event", EVENTS)
    labels.register_model("product", "applications.LoanProduct", name=_name)
    labels.register_model("document", "applications.DocumentRequirement", name=_name)
