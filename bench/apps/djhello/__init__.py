"""Minimal Django project for bench/http_bench.py: one sync view, no database."""
