"""QuickSelect writes what Django's Select writes: the same options, selection and attributes,
every value escaped (an account or a person is named by what people typed)."""

from __future__ import annotations

import re

from django import forms

from apps.common.widgets import QuickSelect

CHOICES = [
    ("", "Everyone"),
    ("a&b", 'Ann "<script>alert(1)</script>"'),
    ("Europe", [("Europe/Paris", "Paris"), ("Europe/Berlin", "Berlin")]),
    ("z", "Zed"),
]


def same(html: str) -> str:
    return re.sub(r">\s+<", "><", html.strip())


def test_a_quick_select_writes_what_djangos_select_writes() -> None:
    for value in ("", "a&b", "Europe/Berlin", "missing"):
        attrs = {"id": "id_who", "required": True, "aria-describedby": "who_help", "disabled": False}
        django_html = forms.Select(choices=CHOICES).render("who", value, attrs=attrs)
        ours = QuickSelect(choices=CHOICES).render("who", value, attrs=attrs)
        assert same(ours) == same(django_html), value


def test_a_quick_select_keeps_the_choice_and_escapes_every_label() -> None:
    class Form(forms.Form):
        who = forms.ChoiceField(choices=CHOICES, widget=QuickSelect)

    html = str(Form(data={"who": "Europe/Paris"})["who"])
    assert '<option value="Europe/Paris" selected>Paris</option>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<optgroup label="Europe">' in html
