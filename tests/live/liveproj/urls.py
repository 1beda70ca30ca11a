import os

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import path

from df_websockets.tasks import set_websocket_topics
from liveproj.models import Note


def page(request):
    set_websocket_topics(request)
    return render(request, "liveproj/page.html", {"notes": Note.objects.all()})


def pid(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [path("", page), path("pid/", pid)]
