"""A PostgreSQL gradebook for tests: Debian's server in a temporary folder, on a Unix socket.

    from postgres_server import postgres          # in a test module: the session's server
    def test_x(postgres): env = {"COURSE_DB_URL": postgres.url}

or, without pytest, ``with temporary_postgres() as server: ...``. The server's folder is made
under /tmp with mode 0755 (pytest's own tmp folders are 0700, which the ``postgres`` user that
runs the server as root could not enter) and removed afterwards. ``fresh_database(server)``
gives the next test an empty gradebook.
"""
import contextlib
import os
import shutil
import tempfile

import pytest

from grader.hub.postgres import PostgresServer, PostgresUnavailable


@contextlib.contextmanager
def temporary_postgres(database="backprop", role="backprop"):
    folder = tempfile.mkdtemp(prefix="course-postgres-")
    os.chmod(folder, 0o755)
    server = PostgresServer(os.path.join(folder, "pg"), database=database, role=role)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server):
    server.drop_database()
    return server.url


@pytest.fixture(scope="session")
def postgres():
    """The session's PostgreSQL server (started once, stopped at the end of the session)."""
    try:
        with temporary_postgres() as server:
            yield server
    except PostgresUnavailable as error:
        pytest.fail(f"{error}. CI runs `make system-packages` before `make test`.")
