from django.urls import path

from . import views

urlpatterns = [
    path("sync/", views.sync_view),
    path("async/", views.async_view),
    path("form/", views.form_view),
    path("upload/", views.upload_view),
    path("stream/", views.stream_view),
]
