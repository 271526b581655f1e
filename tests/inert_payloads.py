"""A notebook full of script payloads in every place a student controls, and pages built from it.

Each payload, if it ran, would set ``window.pwned``, change ``document.title`` or log "pwned".
``feedback_page`` renders a notebook with nbgrader's feedback template, as generate_feedback does.
"""
import base64
import io
import os

from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from PIL import Image
from traitlets.config import Config

import nbgrader

RUN = "window.pwned=1;document.title='pwned';console.log('pwned')"
SCRIPT = f"<script>{RUN}</script>"
PAYLOAD_HTML = [
    SCRIPT,
    f'<img src="x" onerror="{RUN}">',
    f'<a id="js-link" href="javascript:{RUN}">click</a>',
    f'<a href="JaVa&#x09;ScRiPt:{RUN}">click</a>',
    f'<iframe srcdoc="<script>parent.{RUN}</script>"></iframe>',
    f'<object data="data:text/html;base64,{base64.b64encode(SCRIPT.encode()).decode()}"></object>',
    f'<embed src="data:text/html,{SCRIPT}">',
    f'<meta http-equiv="refresh" content="0;url=javascript:{RUN}">',
    f'<svg onload="{RUN}"><script>{RUN}</script><foreignObject><img src=x onerror="{RUN}"></foreignObject></svg>',
    f'<details open ontoggle="{RUN}">x</details>',
    f'<style>@import "javascript:{RUN}";</style><div style="background:url(javascript:{RUN})">s</div>',
    f'<form action="javascript:{RUN}"><button id="js-button">go</button></form>',
    f'<a href="data:text/html,{SCRIPT}">data link</a>',
    f"$\\href{{javascript:{RUN}}}{{math}}$",
    '<img src="y" onerror="alert(\'pwned\')">',
    f"$&#92;href{{javascript:{RUN}}}{{m}}$ $&amp;#92;url{{javascript:{RUN}}}$",
]


def png(width=4, height=3):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def display(data, metadata=None, kind="display_data"):
    extra = {"execution_count": 1} if kind == "execute_result" else {}
    return new_output(kind, data=data, metadata=metadata or {}, **extra)


def payload_notebook():
    outputs = [display({"text/html": html, "text/plain": "honest text"}) for html in PAYLOAD_HTML]
    outputs += [
        display({"application/javascript": RUN}),
        display({"text/markdown": f"{SCRIPT}\n\n[md](javascript:{RUN})"}),
        display({"image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{RUN}"><script>{RUN}</script></svg>'}),
        display({"text/latex": f"$\\href{{javascript:{RUN}}}{{x}}$"}),
        display({"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}}),
        display({"image/png": png()}, {"image/png": {"width": f"1 onerror={RUN}"}, "width": "2 onerror=x"}),
        display({"image/png": f'x" onerror="{RUN}'}),
        display({"image/jpeg": png()}),  # a PNG claiming to be a JPEG
        display({"text/html": SCRIPT}, kind="execute_result"),
        new_output("stream", name="stdout", text=f"{SCRIPT}\n"),
        new_output("error", ename="ValueError", evalue=SCRIPT, traceback=[SCRIPT]),
    ]
    nb = new_notebook(cells=[
        new_markdown_cell("\n\n".join(PAYLOAD_HTML + [f"[md link](javascript:{RUN})", f"<{RUN}>"])),
        new_code_cell("print('hi')", outputs=outputs, execution_count=1),
        new_raw_cell(SCRIPT, metadata={"raw_mimetype": "text/html"}),
    ])
    nb.cells[1].outputs.append(new_output("stream", name=f'x">{SCRIPT}<b class="', text="odd stream"))
    nb.metadata.widgets = {"application/vnd.jupyter.widget-state+json": {
        "state": {"x": {"model_name": f"</script>{SCRIPT}"}}, "version_major": 2, "version_minor": 0}}
    return nb


def feedback_page(nb):
    """HTML of ``nb`` through nbgrader's feedback template (what generate_feedback writes)."""
    root = os.path.dirname(nbgrader.__file__)
    templates = os.path.join(root, "server_extensions", "formgrader", "templates")
    css = os.path.join(root, "server_extensions", "formgrader", "static", "node_modules", "bootstrap", "dist", "css")
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    config.HTMLExporter.extra_template_basedirs = [templates]
    config.HTMLExporter.extra_template_paths = [css]
    resources = {"nbgrader": {"notebook": "payloads", "score": 0, "max_score": 0, "late_penalty": 0}}
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]
