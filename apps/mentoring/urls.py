from django.urls import path

from apps.mentoring.views import groups, links, polls

urlpatterns = [
    path("mentoring/", groups.group_list, name="mentoring_groups"),
    path("mentoring/groups/<int:pk>/", groups.group_detail, name="group_detail"),
    path(
        "mentoring/groups/<int:pk>/availability/",
        groups.group_availability,
        name="group_availability",
    ),
    path("mentoring/polls/new/", polls.poll_create, name="poll_create"),
    path("mentoring/polls/<int:pk>/", polls.poll_detail, name="poll_detail"),
    path("mentoring/polls/<int:pk>/vote/", polls.poll_vote, name="poll_vote"),
    path("mentoring/polls/<int:pk>/options/add/", polls.poll_option_add, name="poll_option_add"),
    path(
        "mentoring/polls/<int:pk>/options/<int:option_id>/remove/",
        polls.poll_option_remove,
        name="poll_option_remove",
    ),
    path("mentoring/polls/<int:pk>/publish/", polls.poll_publish, name="poll_publish"),
    path("mentoring/polls/<int:pk>/close/", polls.poll_close, name="poll_close"),
    path("mentoring/polls/<int:pk>/reopen/", polls.poll_reopen, name="poll_reopen"),
    path("mentoring/polls/<int:pk>/cancel/", polls.poll_cancel, name="poll_cancel"),
    path("mentoring/polls/<int:pk>/remind/", polls.poll_remind, name="poll_remind"),
    path("mentoring/polls/<int:pk>/finalize/", polls.poll_finalize, name="poll_finalize"),
    path(
        "mentoring/polls/<int:pk>/links/<int:invitation_id>/revoke/",
        polls.poll_link_revoke,
        name="poll_link_revoke",
    ),
    path(
        "mentoring/polls/<int:pk>/links/<int:invitation_id>/renew/",
        polls.poll_link_renew,
        name="poll_link_renew",
    ),
    # Personal links: the token is the key, so it is long, random, and stored hashed.
    path("mentoring/polls/<int:pk>/t/<str:token>/", links.poll_link, name="poll_link"),
    path(
        "mentoring/polls/<int:pk>/t/<str:token>/revoke/",
        links.poll_link_self_revoke,
        name="poll_link_self_revoke",
    ),
]
