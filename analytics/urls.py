from django.urls import path

from . import views

app_name = "analytics"
urlpatterns = [
    path("", views.analytics_home, name="home"),
    path("csv/<slug:key>.csv", views.analytics_csv, name="csv"),
    path("model-risk/", views.analytics_model_risk, name="model_risk"),
    path("<slug:section>/", views.analytics_home, name="section"),
]
