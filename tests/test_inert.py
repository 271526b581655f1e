"""grader.steps.inert on hand-built notebooks (no kernel): nothing executable survives, sizes are capped,
and what decides a score (an error, stderr, an execute_result) keeps its type."""
import copy
import html
import json
import re
from html.parser import HTMLParser

from nbconvert import NotebookExporter
from nbformat import from_dict
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.steps.inert import CapOutputBytes, InertMarkdown, InertOutputs, MakeInert, MakeOutputsInert, sanitise_html
from inert_payloads import PAYLOAD_HTML, RUN, display, feedback_page, payload_notebook, png

RUNNABLE_TAGS = {"script", "iframe", "frame", "object", "embed", "applet", "meta", "link", "base", "svg",
                 "math", "style", "form", "details", "video", "audio", "source"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "background", "poster"}
MATHJAX_ACTIVE = re.compile(r"\\(href|url|class|cssId|style|unicode|require)\b")


class _Active(HTMLParser):
    """Every element, attribute and text in a page that a browser (or MathJax) could run."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in RUNNABLE_TAGS:
            self.found.append((tag, tuple(attrs)))
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append((tag, name, value))
            elif name in URL_ATTRIBUTES and value and not SAFE_URL.match(value):
                self.found.append((tag, name, value))

    def handle_data(self, data):
        if MATHJAX_ACTIVE.search(data):
            self.found.append(("text", data))


SAFE_URL = re.compile(r"(https?:|mailto:|#|data:image/(png|jpeg);base64,|[\w./-]+$)", re.I)


def active(page):
    parser = _Active()
    parser.feed(page)
    return parser.found


def inert(nb, **config):
    from traitlets.config import Config
    nb, _ = MakeInert(config=Config(config)).preprocess(copy.deepcopy(nb), {})
    return nb


def visible_text(page):
    """The page's text as a reader sees it: tags stripped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def active_parts(page):
    """What can run in a page, less what the template itself brings."""
    baseline = active(feedback_page(new_notebook()))
    return [found for found in active(page) if found not in baseline]


def test_the_payload_notebook_would_run_script_without_the_preprocessor():
    assert active_parts(feedback_page(payload_notebook()))


def test_no_active_content_reaches_the_feedback_page():
    page = feedback_page(inert(payload_notebook()))
    assert active_parts(page) == []
    text = visible_text(page)
    assert "<script>" in text  # what the student tried is visible as text, for the instructor
    assert "window.pwned=1" in text


def test_each_output_keeps_only_safe_forms():
    nb = inert(payload_notebook())
    outputs = nb.cells[1].outputs
    for output in outputs:
        assert set(output.get("data", {})) <= {"text/plain", "text/html", "image/png", "image/jpeg"}
        assert all(isinstance(v, (bool, int, float)) for v in output.metadata.values())
        assert not active(output.get("data", {}).get("text/html", ""))
    by_kind = [sorted(o.get("data", {})) for o in outputs]
    assert by_kind[len(PAYLOAD_HTML):len(PAYLOAD_HTML) + 9] == [
        ["text/plain"],  # application/javascript: a note
        ["text/plain"],  # text/markdown: its text
        ["text/plain"],  # svg
        ["text/plain"],  # latex
        ["text/plain"],  # widget
        ["image/png"],   # a real PNG, its metadata reduced
        ["text/plain"],  # not a PNG
        ["text/plain"],  # a PNG claiming to be a JPEG
        ["text/html"],   # execute_result: still one, sanitised
    ]
    assert "application/javascript" in outputs[len(PAYLOAD_HTML)].data["text/plain"]
    assert [o.output_type for o in outputs] == [o.output_type for o in payload_notebook().cells[1].outputs]
    assert "widgets" not in nb.metadata


def test_a_real_png_survives_as_plain_base64_and_a_huge_one_does_not():
    image = png()
    nb = new_notebook(cells=[new_code_cell("", outputs=[display({"image/png": image[:20] + "\n" + image[20:]}),
                                                         display({"image/png": png(300, 300)})])])
    outputs = inert(nb, InertOutputs={"max_image_pixels": 200 * 200}).cells[0].outputs
    assert outputs[0].data == {"image/png": image}
    assert list(outputs[1].data) == ["text/plain"]


def test_html_tables_stay_tables():
    table = '<table border="1" class="dataframe"><tr><th>a</th><td colspan="2">1</td></tr></table>'
    output = inert(new_notebook(cells=[new_code_cell("", outputs=[display({"text/html": table})])])).cells[0].outputs[0]
    assert "<table" in output.data["text/html"] and 'colspan="2"' in output.data["text/html"]


def test_markdown_cells_render_as_one_sanitised_html_line():
    source = "# 답 / Answer\n\nThe gradient is **g * y**.\n\n" + "\n\n".join(PAYLOAD_HTML)
    cell = inert(new_notebook(cells=[new_markdown_cell(source)])).cells[0]
    assert "\n" not in cell.source and cell.source.startswith("<div>")
    page = feedback_page(new_notebook(cells=[cell]))
    assert active_parts(page) == []
    text = visible_text(page)
    assert "The gradient is g * y." in text and "Answer" in text


def test_outputs_are_capped_in_bytes_with_a_note():
    flood = "x" * (10 * 2**20)  # one line: nbgrader's LimitOutput counts lines only
    nb = new_notebook(cells=[new_code_cell("", outputs=[new_output("stream", name="stdout", text=flood)])
                             for _ in range(3)])
    limits = {"max_output_bytes": 1000, "max_cell_bytes": 1500, "max_notebook_bytes": 2500}
    capped = inert(nb, CapOutputBytes=limits)
    shown = [sum(len(o.text) for o in cell.outputs if "x" * 10 in o.text) for cell in capped.cells]
    assert shown == [1000, 1000, 500]
    assert all("bytes of output not shown" in cell.outputs[-1].text for cell in capped.cells)
    assert len(feedback_page(capped)) < 400_000


def test_a_cells_score_deciding_output_survives_the_cap():
    many = [new_output("stream", name="stdout", text="y" * 600) for _ in range(5)]
    error = new_output("error", ename="AssertionError", evalue="z" * 5000, traceback=["t" * 5000])
    stderr = new_output("stream", name="stderr", text="w" * 5000)
    result = display({"text/plain": "0.5"}, kind="execute_result")
    nb = new_notebook(cells=[new_code_cell("", outputs=copy.deepcopy(many) + [error, stderr]),
                             new_code_cell("", outputs=copy.deepcopy(many) + [result])])
    capped = inert(nb, CapOutputBytes={"max_output_bytes": 1000, "max_cell_bytes": 1000})
    kinds = [[(o.output_type, o.get("name")) for o in cell.outputs] for cell in capped.cells]
    assert kinds[0] == [("stream", "stdout"), ("stream", "stdout"), ("error", None), ("stream", "stdout")]
    assert kinds[1] == [("stream", "stdout"), ("stream", "stdout"), ("execute_result", None), ("stream", "stdout")]


def test_each_concern_is_its_own_preprocessor():
    nb = payload_notebook()
    only_outputs, _ = InertOutputs().preprocess(copy.deepcopy(nb), {})
    assert only_outputs.cells[0].source == nb.cells[0].source
    only_markdown, _ = InertMarkdown().preprocess(copy.deepcopy(nb), {})
    assert only_markdown.cells[1].outputs == nb.cells[1].outputs
    only_cap, _ = CapOutputBytes().preprocess(copy.deepcopy(nb), {})
    assert only_cap == nb
    assert RUN in nb.cells[0].source


def test_mathjax_commands_are_off_however_the_backslash_is_written():
    for written in ("\\href", "&#92;href", "&#x5C;href", "&bsol;href", "&amp;#92;href", "\\hr&#101;f"):
        shown = html.unescape(sanitise_html(f"$${written}{{javascript:alert(1)}}{{x}}$$"))
        assert "\\href" not in shown, (written, shown)


def test_counts_and_stream_names_are_what_they_claim():
    cell = new_code_cell("", execution_count=1, outputs=[
        display({"text/plain": "1"}, kind="execute_result"), new_output("stream", name="stdout", text="x")])
    cell.execution_count, cell.outputs[0].execution_count = "<b>1</b>", True
    cell.outputs[1].name = '"><script>'
    cell.outputs.append(from_dict({"output_type": "<script>", "data": {}}))
    nb = new_notebook()
    nb.cells.append(cell)  # as the executor left it: nbformat would refuse to build it
    cell = inert(nb).cells[0]
    assert (cell.execution_count, cell.outputs[0].execution_count) == (None, None)
    assert [(o.output_type, o.get("name")) for o in cell.outputs] == [("execute_result", None), ("stream", "stdout")]


def test_registered_by_name_as_nbgrader_does_they_run():
    for name in ("grader.steps.inert.MakeInert", "grader.steps.inert.MakeOutputsInert"):
        exporter = NotebookExporter()
        exporter.register_preprocessor(name)  # nbconvert skips a preprocessor that is not enabled
        written = json.loads(exporter.from_notebook_node(payload_notebook())[0])
        kinds = {mime for output in written["cells"][1]["outputs"] for mime in output.get("data", {})}
        assert kinds <= {"text/plain", "text/html", "image/png"}, name


def test_the_autograded_notebook_keeps_every_cell_source():
    """grader.autograde's second pass finds the first pass's cells by their sources."""
    nb = payload_notebook()
    done, _ = MakeOutputsInert().preprocess(copy.deepcopy(nb), {})
    assert [c.source for c in done.cells] == [c.source for c in nb.cells]
    assert done.cells[1].outputs != nb.cells[1].outputs


EXPENSIVE_HTML = {  # 256 KiB each, built to make an HTML parser or an entity decoder quadratic
    "formatting": "".join(f"<b title={i}>" for i in range(6_000)) + "<p>x" * 40_000,
    "nesting": "<div>" * 52_000,
    "entity_chain": "&amp;" + "amp;" * 65_000 + "#92;href{javascript:alert(1)}",
    "script_in_many_tags": "<i>x</i>" * 30_000 + "<script>window.pwned=1</script>",
}


def test_outputs_built_to_be_expensive_to_sanitise_finish_inert():
    """Sanitising is linear in an output's size (html5lib's tree building is not: past
    MAX_HTML_TAGS tags the HTML is shown as text; entity decoding stops after a few rounds)."""
    nb = new_notebook(cells=[new_code_cell("", outputs=[display({"text/html": payload, "text/plain": name}),
                                                         display({"text/html": payload}, kind="execute_result")])
                             for name, payload in EXPENSIVE_HTML.items()]
                      + [new_markdown_cell(payload) for payload in EXPENSIVE_HTML.values()])
    done = inert(nb)
    for cell in done.cells:
        for output in cell.get("outputs", []):
            assert not active(output.data.get("text/html", ""))
            assert "\\href" not in html.unescape(output.data.get("text/html", ""))
        assert not active(cell.source) if cell.cell_type == "markdown" else True
    escaped = done.cells[3].outputs  # as text it is larger than twice the HTML: only the text stays
    assert [o.data for o in escaped] == [{"text/plain": "script_in_many_tags"},
                                         {"text/plain": "[출력 제거 / output removed: text/html]"}]
    assert sanitise_html(EXPENSIVE_HTML["nesting"]).startswith("&lt;div&gt;&lt;div&gt;")


def test_html_under_the_tag_limit_is_still_html():
    table = "<table>" + "<tr><td>1</td></tr>" * 300 + "</table>"  # 1,802 tags
    assert sanitise_html(table).startswith("<table><tbody><tr><td>1</td>")
    assert sanitise_html(table * 2).startswith("&lt;table&gt;")
