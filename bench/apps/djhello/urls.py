from django.urls import path

from djhello.views import hello

urlpatterns = [path("", hello)]
