"""The instructor's toolkit: collect, repair, grade, verify and report on top of nbgrader."""
