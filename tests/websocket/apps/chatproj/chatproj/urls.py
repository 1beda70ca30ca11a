from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("chat http ok", content_type="text/plain")


urlpatterns = [path("", index)]
