from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "dfws demo"

    def ready(self):
        # register the server-side signals before the first browser call
        from demo import live, signals  # noqa: F401

        live.bind()
