"""The sandbox around student code: one launcher (``launcher``), cgroups, and the warm sandbox.

Every process that runs student code, a grading kernel or a verification run, is forked by the
run's warm sandbox (``warm.WarmSandbox``, asked through ``warm.client()``), which runs inside
bubblewrap (``launcher``) and gives each job a clean slate (namespaces and a /tmp of its own) and
confines it before it runs anything (``grader/inside/warm_sandbox.py``).
"""
