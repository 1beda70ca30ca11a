"""The shared sheet and the chat rooms: plain Django models. Windows stay in
sync through df_websockets' ``bind_model`` (see ``demo.live``): every save
is sent to the windows that show the sheet or the room."""
import string

from django.db import models

ROWS = 10
COLUMNS = string.ascii_uppercase[:6]  # A..F
CELL_MAX_LENGTH = 100


class Named(models.Model):
    """A sheet or a room: what its URL names, created on first visit."""

    name = models.SlugField(max_length=40, unique=True)

    class Meta:
        abstract = True

    def __str__(self):
        return self.name


class Sheet(Named):
    pass


class Cell(models.Model):
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="cells")
    row = models.PositiveSmallIntegerField()  # 0 .. ROWS - 1
    col = models.PositiveSmallIntegerField()  # 0 .. len(COLUMNS) - 1
    value = models.CharField(max_length=CELL_MAX_LENGTH, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sheet", "row", "col"],
                                               name="demo_cell_unique_position")]

    @property
    def field_name(self):
        """The name of its input in the sheet's form."""
        return "c-%d-%d" % (self.row, self.col)

    @property
    def label(self):
        return "%s%d" % (COLUMNS[self.col], self.row + 1)


class Room(Named):
    pass


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.CharField(max_length=40)
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "pk"]
