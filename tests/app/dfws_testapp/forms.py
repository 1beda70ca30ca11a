from django import forms


class TitleForm(forms.Form):
    title = forms.CharField()
    tags = forms.MultipleChoiceField(choices=[("a", "A"), ("b", "B")], required=False)
    attachment = forms.FileField(required=False)
