from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from analytics import api as analytics_api
from applications import api as intake_api
from applications import views as product_views
from approvals import api as approvals_api
from casework import case_api, portal_views, prequal, staff_views, views, whatif_views
from contracts import api as contracts_api
from creditlines import api as creditlines_api
from ledger import api as ledger_api
from loanservice import api
from postloan import api as postloan_api
from underwriting import api as underwriting_api
from underwriting import views as underwriting_views

api_v1 = [
    path("auth/register/", api.RegisterView.as_view(), name="register"),
    path("auth/token/", api.TokenView.as_view(), name="token"),
    path("products/", intake_api.ProductListView.as_view(), name="products"),
    path("prequalify/", prequal.PrequalifyView.as_view(), name="prequalify"),
    path("help/", intake_api.HelpView.as_view(), name="help"),
    path("enterprises/", intake_api.EnterpriseListCreateView.as_view(), name="enterprises"),
    path("enterprises/<int:pk>/data/<str:source>/", underwriting_api.SnapshotPushView.as_view(), name="enterprise-data"),
    path("applications/", intake_api.ApplicationListCreateView.as_view(), name="applications"),
    path("applications/<int:pk>/", case_api.ApplicationDetailView.as_view(), name="application"),
    path("applications/<int:pk>/documents/", intake_api.DocumentUploadView.as_view(), name="application-documents"),
    path("applications/<int:pk>/consent/", intake_api.ConsentView.as_view(), name="application-consent"),
    path("applications/<int:pk>/submit/", case_api.SubmitView.as_view(), name="application-submit"),
    path("applications/<int:pk>/request-info/", case_api.RequestInfoView.as_view(), name="application-request-info"),
    path("applications/<int:pk>/respond/", case_api.RespondView.as_view(), name="application-respond"),
    path("applications/<int:pk>/site-visit/", case_api.SiteVisitView.as_view(), name="application-site-visit"),
    path("applications/<int:pk>/send-to-approval/", case_api.SendToApprovalView.as_view(), name="application-send"),
    path("applications/<int:pk>/decide/", case_api.DecideView.as_view(), name="application-decide"),
    path("applications/<int:pk>/resolution/", case_api.ResolutionView.as_view(), name="application-resolution"),
    path("applications/<int:pk>/accept-offer/", case_api.AcceptOfferView.as_view(), name="application-accept"),
    path("applications/<int:pk>/withdraw/", case_api.WithdrawView.as_view(), name="application-withdraw"),
    path("applications/<int:pk>/collateral/", underwriting_api.CollateralListView.as_view(), name="application-collateral"),
    path("applications/<int:pk>/collateral/<int:item>/", underwriting_api.CollateralItemView.as_view(), name="application-collateral-item"),
    path("applications/<int:pk>/guarantors/", underwriting_api.GuarantorListView.as_view(), name="application-guarantors"),
    path("applications/<int:pk>/guarantors/<int:item>/", underwriting_api.GuarantorItemView.as_view(), name="application-guarantor-item"),
    path("applications/<int:pk>/notes/", underwriting_api.CaseNoteListView.as_view(), name="application-notes"),
    path("applications/<int:pk>/profile/", underwriting_api.ProfileView.as_view(), name="application-profile"),
    path("reason-codes/", approvals_api.ReasonCodeListView.as_view(), name="reason-codes"),
    path("contracts/<int:pk>/", contracts_api.ContractDetailView.as_view(), name="contract"),
    path("contracts/<int:pk>/pdf/", contracts_api.ContractPdfView.as_view(), name="contract-pdf"),
    path("contracts/<int:pk>/verify/", contracts_api.ContractVerifyView.as_view(), name="contract-verify"),
    path("contracts/<int:pk>/schedule/", contracts_api.ContractScheduleView.as_view(), name="contract-schedule"),
    path("contracts/<int:pk>/correct/", contracts_api.ContractCorrectView.as_view(), name="contract-correct"),
    path("contracts/<int:pk>/conditions/", contracts_api.ConditionCheckOffView.as_view(), name="contract-conditions"),
    path("contracts/<int:pk>/sign/", case_api.ContractSignView.as_view(), name="contract-sign"),
    path("contracts/<int:pk>/disburse/", case_api.DisburseView.as_view(), name="contract-disburse"),
    path("loans/<int:pk>/", postloan_api.LoanDetailView.as_view(), name="loan"),
    path("loans/<int:pk>/repayments/", postloan_api.RepaymentView.as_view(), name="loan-repayments"),
    path("loans/<int:pk>/transactions/", postloan_api.LoanTransactionsView.as_view(), name="loan-transactions"),
    path("loans/<int:pk>/payoff-quote/", postloan_api.PayoffQuoteView.as_view(), name="loan-payoff-quote"),
    path("loans/<int:pk>/prepayment-quote/", postloan_api.PrepaymentQuoteView.as_view(), name="loan-prepayment-quote"),
    path("loans/<int:pk>/prepayments/", postloan_api.PrepaymentView.as_view(), name="loan-prepayments"),
    path("loans/<int:pk>/repayments/<int:rid>/reverse/", postloan_api.RepaymentReverseView.as_view(), name="loan-repayment-reverse"),
    path("reversals/<int:pk>/approve/", postloan_api.ReversalApproveView.as_view(), name="reversal-approve"),
    path("loans/<int:pk>/accelerate/", postloan_api.AccelerateView.as_view(), name="loan-accelerate"),
    path("loans/<int:pk>/recoveries/", postloan_api.RecoveryView.as_view(), name="loan-recoveries"),
    path("loans/<int:pk>/renewal/", postloan_api.RenewalView.as_view(), name="loan-renewal"),
    path("loans/<int:pk>/survey/", postloan_api.SurveyView.as_view(), name="loan-survey"),
    path("warnings/", postloan_api.WarningListView.as_view(), name="warnings"),
    path("business-date/", postloan_api.BusinessDateView.as_view(), name="business-date"),
    path("cob/", postloan_api.CobView.as_view(), name="cob"),
    path("cob/<int:pk>/", postloan_api.CobDetailView.as_view(), name="cob-detail"),
    path("credit-lines/<int:pk>/", creditlines_api.CreditLineDetailView.as_view(), name="credit-line"),
    path("credit-lines/<int:pk>/drawdowns/", creditlines_api.DrawdownView.as_view(), name="credit-line-drawdowns"),
    path("credit-lines/<int:pk>/freeze/", creditlines_api.FreezeView.as_view(), name="credit-line-freeze"),
    path("credit-lines/<int:pk>/unfreeze/", creditlines_api.UnfreezeView.as_view(), name="credit-line-unfreeze"),
    path("credit-lines/<int:pk>/adjust/", creditlines_api.AdjustView.as_view(), name="credit-line-adjust"),
    path("credit-line-requests/<int:pk>/approve/", creditlines_api.ChangeDecideView.as_view(), name="credit-line-request-approve"),
    path("credit-line-requests/<int:pk>/reject/", creditlines_api.ChangeRejectView.as_view(), name="credit-line-request-reject"),
    path("drawdowns/<int:pk>/receipt/", creditlines_api.DrawdownReceiptView.as_view(), name="drawdown-receipt"),
    path("analytics/summary/", analytics_api.SummaryView.as_view(), name="analytics-summary"),
    path("analytics/model-risk/", analytics_api.ModelRiskView.as_view(), name="analytics-model-risk"),
    path("ledger/trial-balance/", ledger_api.TrialBalanceView.as_view(), name="ledger-trial-balance"),
    path("reports/asset-quality/", postloan_api.AssetQualityView.as_view(), name="reports-asset-quality"),
]

portal = [
    path("", portal_views.portal_home, name="home"),
    path("apply/<slug:code>/", portal_views.apply_start, name="apply"),
    path("validate/", portal_views.validate_field, name="validate_field"),
    path("applications/<int:pk>/resume/", portal_views.wizard_resume, name="wizard_resume"),
    path("applications/<int:pk>/documents/<int:doc_pk>/remove/", portal_views.document_remove, name="document_remove"),
    path("applications/<int:pk>/", portal_views.application_page, name="application"),
    path("applications/<int:pk>/request/", portal_views.wizard_request, name="wizard_request"),
    path("applications/<int:pk>/documents/", portal_views.wizard_documents, name="wizard_documents"),
    path("applications/<int:pk>/consent/", portal_views.wizard_consent, name="wizard_consent"),
    path("applications/<int:pk>/review/", portal_views.wizard_review, name="wizard_review"),
    path("applications/<int:pk>/action/<str:action>/", portal_views.application_action, name="application_action"),
    path("applications/<int:pk>/info-upload/", underwriting_views.info_request_upload, name="info_upload"),
    path("contracts/<int:pk>/pdf/", portal_views.contract_pdf, name="contract_pdf"),
    path("loans/<int:pk>/", portal_views.loan_page, name="loan"),
    path("loans/<int:pk>/prepayment-quote/", portal_views.loan_prepayment_quote, name="loan_prepayment_quote"),
    path("credit-lines/<int:pk>/", portal_views.credit_line_page, name="credit_line"),
    path("credit-lines/<int:pk>/draw/", portal_views.credit_line_draw, name="credit_line_draw"),
    path("drawdowns/<int:pk>/receipt/", portal_views.drawdown_receipt, name="drawdown_receipt"),
]

staff = [
    path("customers/", product_views.customer_list, name="customers"),
    path("customers/<int:pk>/reassign/", product_views.relationship_manager_reassign_page, name="reassign_rm"),
    path("cases/", staff_views.rm_queue, name="rm_queue"),
    path("cases/<int:pk>/", staff_views.case_page, name="case"),
    path("cases/<int:pk>/action/<str:action>/", staff_views.case_action, name="case_action"),
    path("approvals/", staff_views.approver_queue, name="approver_queue"),
    path("approvals/<int:pk>/", staff_views.review_page, name="review"),
    path("operations/", staff_views.ops_queue, name="ops_queue"),
    path("operations/<int:pk>/action/<str:action>/", staff_views.ops_action, name="ops_action"),
    path("operations/<int:pk>/release/", staff_views.ops_release_confirm, name="ops_release"),
    path("risk/", staff_views.risk_home, name="risk_home"),
    path("risk/whatif/", whatif_views.whatif_page, name="whatif"),
    path("risk/whatif/draft/", whatif_views.whatif_draft, name="whatif_draft"),
    path("risk/whatif/activate/<int:number>/", whatif_views.whatif_activate, name="whatif_activate"),
    path("documents/<int:pk>/", staff_views.document_download, name="document"),
    path("contracts/<int:pk>/pdf/", staff_views.contract_pdf, name="contract_pdf"),
    path("contracts/<int:pk>/schedule.csv", staff_views.contract_schedule, name="contract_schedule"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("products/", product_views.product_list, name="product_list"),
    path("products/<slug:code>/", product_views.product_detail, name="product_detail"),
    path("prequalify/", prequal.prequalify_page, name="prequalify"),
    path("help/", product_views.help_page, name="help"),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("register/", views.register, name="register"),
    path("notifications/", views.notifications, name="notifications"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("portal/", include((portal, "portal"))),
    path("staff/", include((staff, "staff"))),
    path("staff/analytics/", include("analytics.urls")),
    path("staff/marketing/", include("marketing.urls")),
    path("postloan/", include("postloan.urls")),
    path("staff/credit-lines/", include("creditlines.urls")),
    path("staff/finance/", include("postloan.finance_urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # GET only: its OPTIONS answer had no template for the page's HTML renderer (a 500).
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]), name="api-docs"),
]
