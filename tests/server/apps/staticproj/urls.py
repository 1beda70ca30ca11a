from django.http import HttpResponse
from django.urls import path


def page(request):
    return HttpResponse(b"the page", content_type="text/plain")


urlpatterns = [path("", page), path("static-like/", page)]
