from django.urls import path

from apps.mentoring import views

urlpatterns = [
    path("mentoring/", views.group_list, name="mentoring_groups"),
    path("mentoring/groups/<int:pk>/", views.group_detail, name="group_detail"),
    path(
        "mentoring/groups/<int:pk>/availability/",
        views.group_availability,
        name="group_availability",
    ),
    path("mentoring/polls/new/", views.poll_create, name="poll_create"),
    path("mentoring/polls/<int:pk>/", views.poll_detail, name="poll_detail"),
    path("mentoring/polls/<int:pk>/vote/", views.poll_vote, name="poll_vote"),
    path("mentoring/polls/<int:pk>/options/add/", views.poll_option_add, name="poll_option_add"),
    path(
        "mentoring/polls/<int:pk>/options/<int:option_id>/remove/",
        views.poll_option_remove,
        name="poll_option_remove",
    ),
    path("mentoring/polls/<int:pk>/publish/", views.poll_publish, name="poll_publish"),
    path("mentoring/polls/<int:pk>/close/", views.poll_close, name="poll_close"),
    path("mentoring/polls/<int:pk>/reopen/", views.poll_reopen, name="poll_reopen"),
    path("mentoring/polls/<int:pk>/cancel/", views.poll_cancel, name="poll_cancel"),
    path("mentoring/polls/<int:pk>/remind/", views.poll_remind, name="poll_remind"),
    path("mentoring/polls/<int:pk>/finalize/", views.poll_finalize, name="poll_finalize"),
    path(
        "mentoring/polls/<int:pk>/links/<int:invitation_id>/revoke/",
        views.poll_link_revoke,
        name="poll_link_revoke",
    ),
    path(
        "mentoring/polls/<int:pk>/links/<int:invitation_id>/renew/",
        views.poll_link_renew,
        name="poll_link_renew",
    ),
    # Personal links: the token is the key, so it is long, random, and stored hashed.
    path("mentoring/polls/<int:pk>/t/<str:token>/", views.poll_link, name="poll_link"),
    path(
        "mentoring/polls/<int:pk>/t/<str:token>/revoke/",
        views.poll_link_self_revoke,
        name="poll_link_self_revoke",
    ),
]
