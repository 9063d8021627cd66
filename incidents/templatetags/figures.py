"""Figures rounded for people: no "6.2593"."""

from django import template

register = template.Library()


@register.filter
def human_number(value):
    """≥ 10: whole number; ≥ 1: one decimal; below 1: two significant digits; None/blank: "—"."""
    if value is None or value == "":
        return "—"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    size = abs(value)
    if size >= 10:
        return f"{value:.0f}"
    if size >= 1:
        return f"{value:.1f}"
    if size == 0:
        return "0"
    return f"{value:.2g}"
