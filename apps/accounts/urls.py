from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("welcome/", views.welcome, name="welcome"),
    path("settings/", views.settings_page, name="settings"),
]
