"""The gradebook's nightly backup, restored: every grade, a person's decision and the grader's
marks (``grader_marks``) come back as they were (PostgreSQL, as on the hub), through the
runbook's commands: ``python -m grader.hub backup`` and ``restore`` (as root)."""
import os

import pytest
from nbgrader.api import Gradebook

from grader.hub.__main__ import main
from grader.steps import decisions
from postgres_server import postgres  # noqa: F401 (the fixture)


def hub_command(*argv):
    return main(list(argv))


def grades(url):
    with Gradebook(url, "backprop") as gb:
        return ({(g.student.id, g.name): (g.auto_score, g.manual_score, g.needs_manual_grade)
                 for s in gb.find_assignment("a").submissions for n in s.notebooks for g in n.grades},
                decisions.read_marks(gb, "a"))


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the hub's commands run as root")


def test_a_dump_restores_every_grade_and_mark(postgres, tmp_path):  # noqa: F811
    url = postgres.url
    postgres.drop_database()
    with Gradebook(url, "backprop") as gb:
        decisions.ensure_table(gb)
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("test_x", "nb", "a", max_score=3, cell_type="code")
        for student, manual in (("ann", 1.5), ("조민수", None)):
            gb.add_student(student)
            gb.add_submission("a", student)
            grade = gb.find_grade("test_x", "nb", "a", student)
            grade.auto_score, grade.manual_score, grade.needs_manual_grade = 3, manual, False
        decisions.write_mark(gb, "a", "ann", "nb", "test_x", decisions.Mark(decisions.Owner.PERSON, 1.5, False, "c0ffee"))
        gb.db.commit()
    before = grades(url)
    backups = tmp_path / "backups"
    assert hub_command("backup", "--postgres", str(postgres.folder), "--to", str(backups)) == 0
    dump, = backups.glob("backprop-*.dump")
    with Gradebook(url, "backprop") as gb:  # a bad day: a grade lost
        gb.find_grade("test_x", "nb", "a", "ann").manual_score = 0
        gb.db.commit()
    assert hub_command("restore", str(dump), "--postgres", str(postgres.folder)) == 0
    assert grades(url) == before
    assert before[0][("ann", "test_x")] == (3, 1.5, False) and len(before[1]) == 1
