from django.urls import path

from demo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("signals/<str:name>/", views.signal_page, name="signal_page"),
    path("broadcast/", views.broadcast_page, name="broadcast"),
    path("form/", views.form_page, name="form"),
    path("ping/", views.ping, name="ping"),
    path("download/sample.txt", views.download_sample, name="download_sample"),
    path("sheet/", views.sheet, name="sheet"),
    path("sheet/<slug:name>/", views.sheet, name="sheet_named"),
    path("chat/", views.chat_index, name="chat"),
    path("chat/<slug:name>/", views.chat_room, name="chat_room"),
]
