"""The form of the form page, validated on the server from ``serializeForm``
data by ``demo.signals.form_submit`` (through ``SerializedForm``)."""
from django import forms

COLORS = [("red", "Red"), ("green", "Green"), ("blue", "Blue")]


class DemoForm(forms.Form):
    name = forms.CharField(max_length=40)
    email = forms.EmailField()
    age = forms.IntegerField(min_value=0, max_value=150, required=False)
    color = forms.ChoiceField(choices=COLORS, widget=forms.RadioSelect)
    newsletter = forms.BooleanField(required=False)


class ChatForm(forms.Form):
    """A chat message, sent by the page with serializeForm and validated
    here (``demo.signals.chat_post``)."""

    author = forms.CharField(max_length=40)
    text = forms.CharField(max_length=500)
