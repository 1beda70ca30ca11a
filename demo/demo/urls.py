from django.urls import path

from demo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("signals/<str:name>/", views.signal_page, name="signal_page"),
    path("broadcast/", views.broadcast_page, name="broadcast"),
    path("form/", views.form_page, name="form"),
    path("ping/", views.ping, name="ping"),
    path("download/sample.txt", views.download_sample, name="download_sample"),
]
