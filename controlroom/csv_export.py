"""The one CSV writer for every export: streamed, UTF-8 with a BOM, spreadsheet formulas defused.

A cell starting with = + - @ (or a tab / carriage return that some spreadsheet apps skip before
one) is read as a formula by Excel, LibreOffice and Google Sheets: `=HYPERLINK(...)` in an audit
reason or a viewer's nickname would run on the manager's machine. Such text cells get a leading
apostrophe, which spreadsheets show as plain text. Numbers are written as they are.
"""

import csv

from django.http import HttpResponse, StreamingHttpResponse

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


def csv_lines(header, rows):
    """Yield the encoded lines: a BOM with the header, then one line per row."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([defuse(v) for v in header])
    for row in rows:
        yield writer.writerow([defuse(v) for v in row])


def csv_response(filename, header, rows, stream=True):
    """A CSV download; streamed (a million rows never sit in memory) unless `stream=False` for small ones."""
    lines = csv_lines(header, rows)
    if stream:
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse("".join(lines), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
