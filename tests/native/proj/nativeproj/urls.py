from django.urls import path

from nativeproj import views

urlpatterns = [
    path("page/", views.page),
    path("login/<str:username>/", views.login_page),
    path("trigger/", views.trigger_view),
    path("pid/", views.pid),
    path("deflate-stats/", views.deflate_stats),
    path("c-history-send/", views.c_history_send),
]
