from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

admin.site.site_header = "Convene administration"
admin.site.site_title = "Convene admin"
admin.site.index_title = "Organisations, programmes and people"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("apps.integrations.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_docs"),
    path("", include("apps.accounts.urls")),
    path("", include("apps.calendars.urls")),
    path("", include("apps.appointments.urls")),
    path("", include("apps.mentoring.urls")),
]

handler404 = "apps.integrations.api.errors.page_not_found"
