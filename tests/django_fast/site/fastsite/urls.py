from django.urls import path

from fastsite import views

urlpatterns = [
    path("", views.hello),
    path("meta/", views.meta),
    path("session/", views.session),
    path("form/", views.form),
    path("login/", views.login_view),
    path("whoami/", views.whoami),
    path("msg/add/", views.message_add),
    path("msg/show/", views.message_show),
    path("upload/", views.upload),
    path("stream/", views.stream),
    path("astream/", views.astream),
    path("file/", views.file),
    path("async/", views.async_view),
    path("boom/", views.boom),
    path("missing/", views.not_found),
    path("page/", views.page),
    path("big/", views.big),
    path("head/", views.head_or_get),
    path("cookies/", views.cookies),
    path("café/", views.hello),
    path("served-by/", views.served_by),
    path("sleep/", views.sleep),
]
