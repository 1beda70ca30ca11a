from django.db import models


class Room(models.Model):
    """Used only as a model-instance topic (``-nativeapp.room.<pk>``); never saved."""

    name = models.CharField(max_length=40)
