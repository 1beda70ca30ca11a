"""Chat rooms: the same protocol served by a sync and an async consumer.

On connect the consumer joins the room's group and sends
{"type": "hello", "kind": "sync"|"async", "user": <username or "anonymous">};
every text it receives is broadcast to the room as
{"type": "message", "text": ..., "user": <sender's username>}."""
import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer


def username(scope):
    user = scope.get("user")
    if user is not None and user.is_authenticated:
        return user.username
    return "anonymous"


class SyncChatConsumer(WebsocketConsumer):
    def connect(self):
        self.group = "sync-" + self.scope["url_route"]["kwargs"]["room"]
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()
        self.send(text_data=json.dumps(
            {"type": "hello", "kind": "sync", "user": username(self.scope)}))

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive(self, text_data=None, bytes_data=None):
        async_to_sync(self.channel_layer.group_send)(self.group, {
            "type": "chat.message", "text": text_data, "user": username(self.scope)})

    def chat_message(self, event):
        self.send(text_data=json.dumps(
            {"type": "message", "text": event["text"], "user": event["user"]}))


class AsyncChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.group = "async-" + self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps(
            {"type": "hello", "kind": "async", "user": username(self.scope)}))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(self.group, {
            "type": "chat.message", "text": text_data, "user": username(self.scope)})

    async def chat_message(self, event):
        await self.send(text_data=json.dumps(
            {"type": "message", "text": event["text"], "user": event["user"]}))
