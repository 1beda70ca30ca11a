#!/usr/bin/env python3
"""manage.py of the bench/native_bench.py project (needs WSPROJ_REDIS_URL)."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wsproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
