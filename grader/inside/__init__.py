"""Programs that run inside the sandbox, sent as source to ``python -I -c``; never imported by the grader."""
