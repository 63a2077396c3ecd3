from django.urls import path

from apps.calendars import push_views, views

urlpatterns = [
    path("calendars/push/google/", push_views.push_google, name="push_google"),
    path("calendars/push/microsoft/", push_views.push_microsoft, name="push_microsoft"),
    path("settings/calendars/", views.calendar_settings, name="calendar_settings"),
    path("welcome/calendar/", views.welcome_calendar, name="welcome_calendar"),
    path(
        "settings/calendars/connect/<slug:provider>/",
        views.calendar_connect,
        name="calendar_connect",
    ),
    path(
        "settings/calendars/<int:pk>/reconnect/",
        views.calendar_account_reconnect_view,
        name="calendar_account_reconnect",
    ),
    path(
        "settings/calendars/<int:pk>/choices/",
        views.calendar_account_choices,
        name="calendar_account_choices",
    ),
    path(
        "settings/calendars/<int:pk>/refresh/",
        views.calendar_account_refresh,
        name="calendar_account_refresh",
    ),
    path(
        "settings/calendars/<int:pk>/disconnect/",
        views.calendar_account_disconnect_view,
        name="calendar_account_disconnect",
    ),
]
