"""A Channels consumer: a room chat relayed through the channel layer."""
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class RoomConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = "room-" + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content):
        await self.channel_layer.group_send(
            self.group, {"type": "room.message", "text": str(content.get("text", ""))[:200]})

    async def room_message(self, event):
        await self.send_json({"text": event["text"]})
