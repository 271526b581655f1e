"""What a person reads on an HTML page: tags stripped, entities decoded.

Feedback pages are syntax-highlighted: ``check_function(Mul`` is split across ``<span>``s and
can never match the raw HTML. Leak checks assert on this text instead.
"""
import html
import re
from html.parser import HTMLParser

TAG = re.compile(r"<[^>]*>")


def page_text(path):
    return html.unescape(TAG.sub("", path.read_text(encoding="utf-8")))


class _Executable(HTMLParser):
    """Collects what a browser would run: script bodies, event-handler attributes, javascript: URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or value.strip().lower().startswith("javascript:"):
                self.parts.append(f"{tag} {name}={value}")
            if tag == "script" and name == "src":
                self.parts.append(f"script src={value}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.parts.append(data)


def executable_parts(path):
    """Every piece of the page at ``path`` that a browser would execute."""
    parser = _Executable()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.parts
