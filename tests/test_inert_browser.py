"""The feedback page of a notebook full of script payloads, opened in Chromium: nothing runs.

The same page built without grader.steps.inert runs the payloads, which shows the test can see them.
"""
import copy

import pytest
from traitlets.config import Config

from grader.steps.inert import MakeInert
from inert_payloads import feedback_page, payload_notebook

pytestmark = pytest.mark.browser

CLICK_EVERYTHING = "document.querySelectorAll('a, button, summary').forEach(e => e.click())"


def what_ran(chromium, page_html, path):
    """Open ``page_html`` from a file, click every link and button; report what payloads did."""
    path.write_text(page_html, encoding="utf-8")
    page = chromium.new_page()
    seen = {"console": [], "dialogs": []}
    page.on("console", lambda message: seen["console"].append(message.text))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    title = page.title()
    page.evaluate(CLICK_EVERYTHING)
    page.wait_for_timeout(500)
    seen["pwned"] = page.evaluate("window.pwned !== undefined")
    seen["title"] = [title, page.title()]
    page.close()
    seen["console"] = [text for text in seen["console"] if "pwned" in text]
    return seen


def test_payloads_run_in_the_page_built_without_inert(chromium, tmp_path):
    seen = what_ran(chromium, feedback_page(payload_notebook()), tmp_path / "raw.html")
    assert seen["pwned"] and seen["console"] and seen["dialogs"]


def test_nothing_runs_in_the_feedback_page_built_with_inert(chromium, tmp_path):
    nb, _ = MakeInert(config=Config()).preprocess(copy.deepcopy(payload_notebook()), {})
    seen = what_ran(chromium, feedback_page(nb), tmp_path / "inert.html")
    assert seen == {"console": [], "dialogs": [], "pwned": False, "title": ["payloads", "payloads"]}
