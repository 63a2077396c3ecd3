from django.urls import path

from apps.integrations.api import views

urlpatterns = [
    path("availability", views.AvailabilityApi.as_view(), name="api_availability"),
    path("calendars", views.CalendarListApi.as_view(), name="api_calendars"),
    path("appointments", views.AppointmentListCreateApi.as_view(), name="api_appointments"),
    path("appointments/<int:pk>", views.AppointmentDetailApi.as_view(), name="api_appointment"),
    path(
        "appointments/<int:pk>/status",
        views.AppointmentStatusApi.as_view(),
        name="api_appointment_status",
    ),
]
