from django.urls import path

from . import views

app_name = "postloan"
urlpatterns = [
    path("loans/<int:pk>/", views.loan_page, name="loan"),
    path("loans/<int:pk>/action/<str:action>/", views.loan_action, name="loan_action"),
    path("approvals/", views.approvals_page, name="approvals"),
    path("approvals/<int:pk>/decide/", views.approval_decide, name="approval_decide"),
    path("warnings/", views.warnings_page, name="warnings"),
    path("tasks/", views.tasks_page, name="tasks"),
    path("tasks/<int:pk>/complete/", views.task_complete, name="task_complete"),
    path("imports/", views.imports_page, name="imports"),
    path("imports/<int:pk>/", views.import_page, name="import"),
    path("my/loans/<int:pk>/renewal/", views.portal_renewal, name="portal_renewal"),
    path("my/loans/<int:pk>/survey/", views.portal_survey, name="portal_survey"),
    path("my/loans/<int:pk>/auto-debit/", views.portal_auto_debit, name="portal_auto_debit"),
]
