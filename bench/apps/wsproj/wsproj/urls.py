from django.urls import path

from wsproj import views

urlpatterns = [path("page/", views.page)]
