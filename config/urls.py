from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Convene administration"
admin.site.site_title = "Convene admin"
admin.site.index_title = "Organisations, programmes and people"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("apps.accounts.urls")),
    path("", include("apps.calendars.urls")),
    path("", include("apps.appointments.urls")),
    path("", include("apps.mentoring.urls")),
]
