"""Feedback HTML that shows scores, visible test output and hidden tests' failure messages only.

Stock ``nbgrader generate_feedback`` renders the autograded notebook as it is, hidden test source
included (nbgrader #917). ``RedactHiddenTests`` runs first in its preprocessor list:

- it strips the hidden part of each test cell's source (``grader.markers.split_hidden``);
- it drops what the hidden part printed, keeping a hidden failure's message (truncated) without
  the traceback that would quote the hidden source;
- it removes, from every output of every cell, any line that quotes a line of the hidden tests
  (student code may have captured the hidden source while it ran and printed it later);
- under each test the grader verified outside the notebook, it says what verification found:
  that result is the score, and it may differ from what the notebook showed;
- when a person will review the submission (the notebook and verification disagree, or the
  answer cells use constructs an honest solution never needs), the page says so first, naming
  the cells, and then shows no output of any cell but the grader's own messages: an answer that
  hooked into the kernel could otherwise have smuggled hidden-test text out in any encoding.

The page is nbgrader's feedback template without MathJax, so it loads no script from elsewhere.
"""
import html
import re
import time
from concurrent.futures import as_completed
from pathlib import Path

from jinja2 import BytecodeCache
from nbconvert import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbformat.v4 import new_markdown_cell, new_output
from traitlets import Dict

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor

from ..course import Course
from ..markers import HIDDEN_OUTPUT, split_hidden

MAX_MESSAGE = 500
MIN_QUOTED = 12  # hidden lines shorter than this (``### END``, ``)``) are too common to redact
HIDDEN_NOTE = "# (비공개 검사는 채점에만 쓰입니다 / hidden tests are run by the grader only)"
REDACTED = "[비공개 검사 내용 삭제 / hidden test text removed]"
NO_DESCRIPTION = "No description has been provided for this image"  # nbconvert's words
IMAGE_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)", re.IGNORECASE)
STOCK_TEST_ENTRY = re.compile(r'<a href="#([^"<>]+)">Test cell</a>')  # nbgrader's summary line
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
MAX_NAME = 100
# Long lines (the grader's verification, a message) wrap inside their box instead of running off it.
WRAP_STYLE = ("<style>div.output_area pre, div.output_subarea {white-space: pre-wrap; "
              "overflow-wrap: anywhere; max-width: 100%;} div.output_area img {max-width: 100%; "
              "height: auto;}</style>\n</head>")


class RedactHiddenTests(NbGraderPreprocessor):

    verdicts = Dict(help="{student: {grade_id: Verdict}} from grader.steps.verify").tag(config=True)
    reviews = Dict(help="{student: [why a person will review it]}; their outputs are withheld").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        self._verdicts = self.verdicts.get(student, {})
        self._withhold = bool(self.reviews.get(student))
        if self._withhold:
            nb.cells.insert(0, new_markdown_cell(review_text(self.reviews[student])))
        self._hidden_lines = {line.strip() for cell in nb.cells if cell.cell_type == "code"
                              for line in split_hidden(cell.source)[1].splitlines()
                              if len(line.strip()) >= MIN_QUOTED}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._withhold:
            cell.outputs = [self._visible(o) for o in cell.get("outputs", []) if o.output_type == "error"]
        if utils.is_grade(cell):
            visible, hidden = split_hidden(cell.source)
            if hidden:
                cell.source = visible.rstrip() + "\n" + HIDDEN_NOTE
            cell.outputs = [self._visible(o) for o in cell.get("outputs", [])
                            if not o.get("metadata", {}).get(HIDDEN_OUTPUT) or o.output_type == "error"]
            verdict = self._verdicts.get(cell.metadata.nbgrader.get("grade_id"))
            if verdict:
                cell.outputs.append(new_output("stream", name="stdout", text=verdict_text(verdict)))
        for output in cell.get("outputs", []):
            self._scrub(output)
        return cell, resources

    @staticmethod
    def _visible(output):
        if not output.get("metadata", {}).get(HIDDEN_OUTPUT):
            return output
        evalue = output.evalue[:MAX_MESSAGE]
        return new_output("error", ename=output.ename, evalue=evalue,
                          traceback=[f"{output.ename}: {evalue}"])

    def _scrub(self, output):
        def clean(text):
            if isinstance(text, list):
                text = "".join(text)
            return "\n".join(REDACTED if any(h in line for h in self._hidden_lines) else line
                             for line in text.split("\n"))
        if "text" in output:
            output.text = clean(output.text)
        if output.output_type == "error":
            output.evalue = clean(output.evalue)
            output.traceback = [clean(line) for line in output.traceback]
        for mime, data in output.get("data", {}).items():
            if mime.startswith("text/") or mime in ("application/javascript",):
                output.data[mime] = clean(data)


def _nbgrader_templates():
    import nbgrader
    return str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")


# nbgrader's feedback page (its API insists on the template named "feedback"), with our
# templates/feedback first on the path: its mathjax.html.j2 leaves MathJax, a script from a CDN, out.
PAGE = {"extra_template_basedirs": [str(Path(__file__).parent / "templates"), _nbgrader_templates()]}


# In order; nbconvert's own run only when enabled (CoalesceStreamsPreprocessor is, in generate).
PREPROCESSORS = ["grader.steps.feedback.RedactHiddenTests", "grader.steps.inert.MakeInert",
                 "nbconvert.preprocessors.CoalesceStreamsPreprocessor",
                 "nbgrader.preprocessors.GetGrades"]


def review_text(reasons):
    """The feedback's first cell when a person will review the submission (escaped: it is Markdown)."""
    lines = "\n".join(f"- {html.escape(reason)}" for reason in reasons)
    return ("**채점자가 이 제출물을 직접 확인합니다. / A person will review this submission.** "
            "점수는 확인 후 확정됩니다. 출력은 표시하지 않습니다. / The score is final only after "
            "that review; cell outputs are not shown.\n\n" + lines)


def verdict_text(verdict):
    if verdict.passed:
        return "채점기 검증: 통과 / verified by the grader on fresh inputs: passed\n"
    return (f"채점기 검증: 실패 / verified by the grader on fresh inputs: failed ({verdict.reason}); "
            "이 결과가 점수입니다 / this result is the score\n")


class _KeptBytecode(BytecodeCache):
    """Compiled Jinja templates, kept for the life of the process (keyed by template and source)."""

    store = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


class FeedbackExporter(HTMLExporter):
    """nbgrader's HTML exporter, compiling its templates once per process, not once per student,
    and without nbconvert's BeautifulSoup pass over the finished page.

    nbgrader builds a new exporter for every feedback page, and compiling the templates again
    cost more than rendering the page; only compiled code is reused. The BeautifulSoup pass
    (parsing and re-writing every highlighted token: half of what remained) gives images
    without one a generic alt text, added here directly, and makes the cells of JupyterLab's
    template focusable: nbgrader's feedback template is the classic one, which has none.
    """

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _KeptBytecode()
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name", None))
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        names = exercise_names(nb)
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        page = STOCK_TEST_ENTRY.sub(lambda m: f'<a href="#{m[1]}">{html.escape(names.get(html.unescape(m[1]), m[1]))}</a>',
                                    page)
        page = page.replace("</head>", WRAP_STYLE, 1)
        return IMAGE_WITHOUT_ALT.sub(f'<img alt="{NO_DESCRIPTION}"', page), resources


def exercise_names(nb):
    """{grade_id: the last Markdown heading above its test cell} (backticks dropped), for the
    page's summary, where nbgrader writes "Test cell" for every test."""
    names, heading = {}, None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = HEADING.findall(cell.source)
            heading = found[-1].replace("`", "")[:MAX_NAME] if found else heading
        elif utils.is_grade(cell) and heading:
            names[cell.metadata.nbgrader["grade_id"]] = heading
    return names


def _generate_one(root, assignment, student, verdicts, reviews):
    """One student's feedback in a pool worker (nbgrader's API of its own): ('' or the error, seconds)."""
    started = time.monotonic()
    api = Course(root).api(HTMLExporter=PAGE,
                           GenerateFeedback={"preprocessors": PREPROCESSORS,
                                             "exporter_class": "grader.steps.feedback.FeedbackExporter"},
                           CoalesceStreamsPreprocessor={"enabled": True},
                           RedactHiddenTests={"verdicts": {student: verdicts}, "reviews": reviews})
    result = api.generate_feedback(assignment, student, force=True)
    error = "" if result.get("success") else result.get("error") or "feedback failed"
    return error, time.monotonic() - started


def submit(pool, course, assignment, outcome):
    """Queue one graded student's feedback page on ``pool`` (a ``concurrent.futures`` executor);
    their verdicts are shown under each test, except where a person set the score. Returns the
    future (see ``finished``)."""
    reasons = [*(d.describe() for d in outcome.disagreements),
               *(f"{f.grade_id}, line {f.line}: {f.what}" for f in outcome.findings)]
    verdicts = {g: v for g, v in outcome.verdicts.items() if g not in outcome.graded_by_hand}  # a person's score
    return pool.submit(_generate_one, str(course.root), assignment, outcome.student, verdicts,
                       {outcome.student: reasons} if reasons else {})


def finished(futures):
    """{student: (error or '', worker seconds)} once each future of {future: student} is done."""
    done = {}
    for future in as_completed(futures):
        try:
            done[futures[future]] = future.result()
        except Exception as exception:  # the worker itself failed: this student only
            done[futures[future]] = (f"{type(exception).__name__}: {exception}", 0.0)
    return done
