from django import template

register = template.Library()


@register.filter
def yuan(fen):
    """Integer fen as "¥12.34" (exact: integer arithmetic, no floats)."""
    if fen is None or fen == "":
        return "—"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"
