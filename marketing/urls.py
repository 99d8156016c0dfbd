from django.urls import path

from . import views

app_name = "marketing"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("prospects/<int:pk>/", views.prospect_page, name="prospect"),
    path("prospects/<int:pk>/contact/", views.contact, name="contact"),
    path("prospects/<int:pk>/invite/", views.invite, name="invite"),
    path("import/", views.import_list, name="import"),
    path("derive/", views.derive, name="derive"),
]
