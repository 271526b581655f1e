"""What a person reads on an HTML page: tags stripped, entities decoded.

Feedback pages are syntax-highlighted: ``check_function(Mul`` is split across ``<span>``s and
can never match the raw HTML. Leak checks assert on this text instead.
"""
import html
import re

TAG = re.compile(r"<[^>]*>")


def page_text(path):
    return html.unescape(TAG.sub("", path.read_text(encoding="utf-8")))
