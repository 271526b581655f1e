"""What a person opens is inert: student outputs and Markdown reduced to forms that run nothing.

The feedback page and formgrader's view of the autograded notebook are nbconvert HTML opened in
the instructor's (or student's) browser, formgrader from the instructor's own Jupyter session. A
student's notebook controls every output, its metadata and any Markdown answer cell, so each is
reduced before nbconvert sees it, by one preprocessor per concern, run together by ``MakeInert``
for feedback pages and by ``MakeOutputsInert`` (outputs only) for the autograded notebook:

- ``InertOutputs``: every output keeps its type (scores read the types: an error or stderr
  scores 0) and only these forms: text (rendered escaped by nbconvert); PNG and JPEG only when
  they decode as an image of the declared kind and bounded size, re-encoded as plain base64;
  HTML sanitised by an allow-list (bleach) with no script, event handler, style, frame, form,
  object, meta or non-http(s)/mailto URL; everything else (JavaScript, SVG, Markdown, LaTeX,
  widgets, unknown types) dropped, with a text note when nothing readable is left. Output
  metadata keeps only numbers and flags (nbconvert writes ``width=`` unquoted into ``<img>``).
  SVG is dropped rather than rasterised: no SVG renderer is installed and it can carry script.
  Execution counts and stream names, which templates print unescaped, must be what they claim.
- ``InertMarkdown``: Markdown cells (answer cells may be Markdown in other assignments) are
  rendered with nbconvert's own Markdown renderer, sanitised the same way, and stored as one
  raw HTML line, so nbconvert passes them through without reading Markdown again. Raw cells
  lose the mimetype that would make nbconvert paste them into the page.
- ``CapOutputBytes``: bytes per output, per cell and per notebook (nbgrader's LimitOutput only
  counts lines), with a note saying how much was cut; a cell's score-deciding output survives.

Also MathJax, which the pages load, could turn ``\\href{javascript:...}`` into a link: the
commands that make links, styles or load extensions are disabled in sanitised HTML.
"""
import base64
import binascii
import html
import io
import itertools
import re

import bleach
from bleach.html5lib_shim import Filter
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from PIL import Image
from traitlets import Bool, Int

TEXT = "text/plain"
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}
IMAGES = {"image/png": "PNG", "image/jpeg": "JPEG"}
TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "del", "div", "em", "h1", "h2",
        "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
        "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"}
CELL_ATTRIBUTES = {"align", "colspan", "rowspan"}
MATHJAX_ACTIVE = re.compile(r"\\(href|url|class|cssId|style|unicode|require|data|html|mmlToken)\b")
TAG = re.compile(r"<[/!?]?[A-Za-z]")
MAX_HTML_TAGS = 2_000  # html5lib's tree building is quadratic in open elements: past this, text
MAX_UNESCAPES = 4      # rounds of entity decoding; an ampersand left after them is shown as ＆
SAFE_LINK = re.compile(r"(https?://|mailto:|#)", re.I)  # bleach's scheme check lets data: through for img
BASE64_IMAGE = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]+")


def _allowed_attribute(tag, name, value):
    if tag == "a":
        return name == "title" or name == "href" and SAFE_LINK.match(value) is not None
    if tag == "img":
        return name == "alt" or name == "src" and BASE64_IMAGE.fullmatch(value) is not None
    if tag in ("td", "th"):
        return name in CELL_ATTRIBUTES
    return tag == "table" and name == "border"


class _MathJaxOff(Filter):
    """Text as the browser will see it (entities decoded) with MathJax's active commands disabled.

    bleach keeps character references as written, so ``&#92;href`` would reach MathJax as
    ``\\href``: each text run is decoded until no reference is left (then the browser reads
    exactly that text), and cleaned.
    """

    def __iter__(self):
        run = []
        for token in super().__iter__():
            if token["type"] in ("Characters", "SpaceCharacters", "Entity"):
                run.append(f"&{token['name']};" if token["type"] == "Entity" else token["data"])
                continue
            if run:
                yield self._text(run)
                run = []
            yield token
        if run:
            yield self._text(run)

    @staticmethod
    def _text(run):
        """Decoded a few rounds (each linear); a reference still left (``&amp;amp;...``, built to
        make decoding quadratic) loses its ampersand, so nothing is decoded after us."""
        text, decoded = None, "".join(run)
        for _ in range(MAX_UNESCAPES):
            if text == decoded:
                break
            text, decoded = decoded, html.unescape(decoded)
        if text != decoded:
            text = decoded.replace("&", "\uff06")
        return {"type": "Characters", "data": MATHJAX_ACTIVE.sub(r"\\text{\1}", text)}


CLEANER = bleach.Cleaner(tags=TAGS, attributes=_allowed_attribute, protocols={"http", "https", "mailto", "data"},
                         strip=False, strip_comments=True, filters=[_MathJaxOff])


def sanitise_html(source):
    """Allow-listed HTML on one line: anything else shows as text; MathJax's active commands off.

    Linear in the source: HTML of more than ``MAX_HTML_TAGS`` tags is shown as text (escaped)."""
    if next(itertools.islice(TAG.finditer(source), MAX_HTML_TAGS, None), None) is not None:
        clean = html.escape(MATHJAX_ACTIVE.sub(r"\\text{\1}", source))
    else:
        clean = CLEANER.clean(source)
    return clean.replace("\r", "").replace("\n", "&#10;")


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value):
    return "".join(value) if isinstance(value, list) else value


def checked_image(data, kind, max_pixels):
    """Plain base64 of an image that decodes as ``kind`` with at most ``max_pixels``, or None."""
    try:
        raw = base64.b64decode(re.sub(r"\s", "", _text(data)), validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != kind or image.width * image.height > max_pixels:
                return None
            image.verify()
    except (binascii.Error, TypeError, ValueError, OSError, SyntaxError, Image.DecompressionBombError):
        return None
    return base64.b64encode(raw).decode("ascii")


class Inert(Preprocessor):
    """Enabled by default: nbconvert runs a registered preprocessor only when it is enabled."""

    enabled = Bool(True, help="Run when registered in a preprocessor list.").tag(config=True)


class InertOutputs(Inert):
    """Reduce every output of every cell to text, checked PNG/JPEG and sanitised HTML."""

    max_image_pixels = Int(
        4096 * 4096, help="Largest image kept (width x height); larger ones become a note.").tag(config=True)

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)  # nbconvert would embed widget state and load its scripts
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if "execution_count" in cell:  # the student's kernel reports it; templates print it raw
            cell.execution_count = _count(cell.execution_count)
        if "outputs" in cell:
            cell.outputs = [output for output in cell.outputs if output.get("output_type") in OUTPUT_TYPES]
        for output in cell.get("outputs", []):
            if "data" in output:
                output.data = self._inert_data(output.data)
            if "execution_count" in output:
                output.execution_count = _count(output.execution_count)
            if output.output_type == "stream" and output.get("name") not in ("stdout", "stderr"):
                output.name = "stdout"
            output.metadata = {key: value for key, value in output.get("metadata", {}).items()
                               if isinstance(value, (bool, int, float))}
        return cell, resources

    def _inert_data(self, data):
        kept = {}
        for mime, kind in IMAGES.items():
            if mime in data:
                image = checked_image(data[mime], kind, self.max_image_pixels)
                if image:
                    kept[mime] = image
        if "text/html" in data:
            source = _text(data["text/html"])
            clean = sanitise_html(source)
            if len(clean) <= 2 * len(source) + 64:  # escaping may not multiply a capped output
                kept["text/html"] = clean
        text = data.get(TEXT, data.get("text/markdown"))
        dropped = sorted(set(data) - set(kept) - {TEXT})
        if text is not None:
            kept[TEXT] = _text(text)
        elif dropped:
            kept[TEXT] = f"[출력 제거 / output removed: {', '.join(dropped)}]"
        return kept


class InertMarkdown(Inert):
    """Markdown cells become sanitised HTML on one line (Markdown passes a raw HTML line through);
    raw cells lose the mimetype that would have nbconvert paste them into the page."""

    max_source_bytes = Int(256 * 1024, help="Bytes of one Markdown cell rendered; the rest is cut.").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            source = _text(cell.source)
            if _size(source) > self.max_source_bytes:
                source = _cut(source, self.max_source_bytes) + "\n\n[생략 / cut]"
            rendered = sanitise_html(markdown2html_mistune(source))
            cell.source = f"<div>{rendered}</div>"
            cell.pop("attachments", None)
        elif cell.cell_type == "raw":
            cell.metadata.pop("raw_mimetype", None)
            cell.metadata.pop("format", None)
        return cell, resources


class CapOutputBytes(Inert):
    """Cap outputs in bytes per output, per cell and per notebook, saying how much was cut.

    Scores read outputs (nbgrader's determine_grade: the first error, stderr or execute_result
    decides), so the first such output of a cell is never removed, only shortened.
    """

    max_output_bytes = Int(256 * 1024, help="Bytes one output may show.").tag(config=True)
    max_cell_bytes = Int(1024 * 1024, help="Bytes all outputs of one cell may show.").tag(config=True)
    max_notebook_bytes = Int(4 * 1024 * 1024, help="Bytes all outputs of the notebook may show.").tag(config=True)

    def preprocess(self, nb, resources):
        self._notebook_left = self.max_notebook_bytes
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if "outputs" not in cell:
            return cell, resources
        left = min(self.max_cell_bytes, self._notebook_left)
        kept, cut, decisive = [], 0, False
        for output in cell.outputs:
            size = output_bytes(output)
            limit = min(self.max_output_bytes, left)
            if size <= limit:
                kept.append(output)
                left -= size
            elif limit > 0:
                kept.append(shorten(output, limit))
                left -= limit
                cut += size - limit
            else:
                cut += size
                if _decides_score(output) and not decisive:
                    kept.append(shorten(output, 0))
            decisive = decisive or _decides_score(output)
        if cut:
            kept.append(new_output("stream", name="stdout",
                                   text=f"\n[출력 일부 생략 / {cut} bytes of output not shown: limits "
                                        f"{self.max_output_bytes} per output, {self.max_cell_bytes} per cell, "
                                        f"{self.max_notebook_bytes} per notebook]\n"))
        self._notebook_left -= min(self.max_cell_bytes, self._notebook_left) - left
        cell.outputs = kept
        return cell, resources


def _decides_score(output):
    return output.output_type in ("error", "execute_result") or output.get("name") == "stderr"


def _size(text):
    return len(_text(text).encode("utf-8"))


def output_bytes(output):
    if output.output_type == "stream":
        return _size(output.text)
    if output.output_type == "error":
        return _size(output.ename) + _size(output.evalue) + sum(_size(line) for line in output.traceback)
    return sum(_size(value) for value in output.get("data", {}).values() if isinstance(value, (str, list)))


def _cut(text, limit):
    return _text(text).encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def shorten(output, limit):
    """The same kind of output showing at most ``limit`` bytes (images and HTML go first)."""
    if output.output_type == "stream":
        output.text = _cut(output.text, limit)
    elif output.output_type == "error":
        output.evalue = _cut(output.evalue, limit // 2)
        output.traceback = [_cut("\n".join(map(_text, output.traceback)), limit // 2)]
    else:
        output.data = {TEXT: _cut(output.data.get(TEXT, ""), limit)}
    return output


class _Steps(Inert):
    """Preprocessors run in order under one name."""

    steps = ()

    def preprocess(self, nb, resources):
        for step in self.steps:
            nb, resources = step(parent=self).preprocess(nb, resources)
        return nb, resources


class MakeInert(_Steps):
    """For pages (feedback): CapOutputBytes first (sanitising 100 MB would take minutes),
    InertOutputs, InertMarkdown."""

    steps = (CapOutputBytes, InertOutputs, InertMarkdown)


class MakeOutputsInert(_Steps):
    """For the autograded notebook: outputs only, every cell's source left as it is.

    grader.autograde's second pass finds the first pass's cells by their sources, so the
    notebook it writes (what formgrader renders) keeps Markdown cells as written.
    """

    steps = (CapOutputBytes, InertOutputs)
