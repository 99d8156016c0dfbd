"""The benchmark stack's URLs: the production ones plus the floor (loanservice.bench_floor). Used only when the
setting BENCH_FLOOR is on (config.settings picks this module then)."""

from django.urls import path

from loanservice.bench_floor import FloorView

from .urls import urlpatterns as production

urlpatterns = [path("api/v1/bench/floor/", FloorView.as_view(), name="bench-floor"), *production]
