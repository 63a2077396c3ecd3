from django.urls import path

from apps.appointments import views

urlpatterns = [
    path("book/", views.book_index, name="book_index"),
    path("book/<int:program_id>/<int:host_id>/", views.book_host, name="book_host"),
    path("book/on-behalf/", views.book_on_behalf, name="book_on_behalf"),
    path("appointments/", views.appointment_list, name="appointment_list"),
    path("appointments/<int:pk>/", views.appointment_detail, name="appointment_detail"),
    path("appointments/<int:pk>/edit/", views.appointment_edit_view, name="appointment_edit"),
    path("appointments/<int:pk>/ics/", views.appointment_ics_view, name="appointment_ics"),
    path(
        "appointments/<int:pk>/<slug:to>/",
        views.appointment_transition_view,
        name="appointment_transition",
    ),
    path("settings/booking/", views.host_settings_view, name="host_settings"),
]
