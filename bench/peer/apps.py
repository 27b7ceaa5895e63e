from django.apps import AppConfig


class PeerConfig(AppConfig):
    name = "bench.peer"
    label = "peer"

    def ready(self):
        from payments.signals import status_changed

        from .models import on_status_changed

        status_changed.connect(on_status_changed)
