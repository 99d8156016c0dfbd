from django.urls import path

from . import views

app_name = "creditlines"
urlpatterns = [
    path("<int:pk>/", views.line_page, name="line"),
    path("<int:pk>/change/<str:kind>/", views.line_change_post, name="change"),
    path("requests/<int:pk>/<str:decision>/", views.change_decide_post, name="decide"),
    path("reviews/<int:pk>/complete/", views.review_complete_post, name="review_complete"),
]
