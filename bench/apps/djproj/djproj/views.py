"""The two views the benchmark requests (bench/peers.py cases django and
template), both sync, as most Django projects' views are."""
from django.http import HttpResponse
from django.shortcuts import render


def hello(request):
    return HttpResponse("Hello, world!")


def page(request):
    # wrk sends no cookie, so this read finds no session: no database query,
    # only the session machinery every request of a real page goes through.
    visits = request.session.get("visits", 0)
    return render(request, "page.html", {"visits": visits, "items": range(10)})
