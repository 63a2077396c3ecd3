from django.urls import path  # noqa: F401 - the mentoring pages are added here

urlpatterns: list = []
