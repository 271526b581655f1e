"""A PostgreSQL server of the course's own: Debian's binaries, a data folder, a Unix socket only.

``PostgresServer(folder).start()`` creates the cluster on first use (``initdb``), starts it with
``pg_ctl`` listening on a socket in ``folder/socket`` and on no TCP port, and makes a login role
and a database for the course with a random password; ``url`` is the SQLAlchemy URL to put in
``COURSE_DB_URL``. ``stop()`` shuts it down. As root the server runs as Debian's ``postgres``
user (PostgreSQL refuses to run as root); otherwise as the calling user.

Who may connect (pg_hba.conf): the server's own OS user as superuser (peer), and the course role
with its password (scram-sha-256), over the socket only. Students on the same machine can reach
the socket but do not have the password: it is in the URL, which only root and the instructor's
formgrader see.
"""
import glob
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

DEFAULT_PORT = 5432  # only names the socket file (.s.PGSQL.<port>); nothing listens on TCP


def postgres_bin():
    """Debian's PostgreSQL binaries (the newest installed major version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing (Debian's postgresql package: `make system-packages`)."""


class PostgresServer:
    """One PostgreSQL cluster in ``folder`` (data, socket, log), with ``database`` owned by ``role``."""

    def __init__(self, folder, database="backprop", role="backprop", port=DEFAULT_PORT):
        self.folder = Path(folder).resolve()
        self.data, self.socket_dir = self.folder / "data", self.folder / "socket"
        self.log = self.folder / "postgres.log"
        self.database, self.role, self.port = database, role, port
        self.bin = postgres_bin()
        if self.bin is None:
            raise PostgresUnavailable("PostgreSQL server not found in /usr/lib/postgresql/*/bin: "
                                      "run `make system-packages` as root (Debian's postgresql)")
        self.os_user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._password_file = self.folder / "role-password"

    # --- running things as the server's user -------------------------------------------------
    def _as_server_user(self, *command):
        prefix = ["runuser", "-u", self.os_user, "--"] if os.geteuid() == 0 else []
        return prefix + [str(c) for c in command]

    def _run(self, *command, **kwargs):
        return subprocess.run(self._as_server_user(*command), check=True, text=True,
                              capture_output=True, cwd="/", **kwargs)

    def _psql(self, sql, database="postgres"):
        return self._run(self.bin / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
                         "-p", self.port, "-d", database, "-tA", "-c", sql).stdout.strip()

    # --- life cycle --------------------------------------------------------------------------
    def _init(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        for path in (self.data, self.socket_dir):
            path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.data, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            self.log.touch()
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data, 0o700)
        os.chmod(self.socket_dir, 0o755)
        if (self.data / "PG_VERSION").exists():
            return
        self._run(self.bin / "initdb", "-D", self.data, "-E", "UTF8", "--locale=C.UTF-8",
                  "--auth-local=peer", "--auth-host=reject")
        hba = (f"local all {self.os_user} peer\n"
               f"local {self.database} {self.role} scram-sha-256\n")
        self._run("sh", "-c", f"cat > {self.data}/pg_hba.conf", input=hba)

    def start(self):
        self._init()
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
                   f"-c port={self.port} -c max_connections=200 -c fsync=off")
        self._run(self.bin / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.log,
                  "-o", options)
        self._ensure_database()
        return self

    def _ensure_database(self):
        if self._password_file.exists():
            password = self._password_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(18)
            self._password_file.write_text(password)
            os.chmod(self._password_file, 0o600)
        if not self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{self.role}'"):
            self._psql(f"CREATE ROLE {self.role} LOGIN")
        self._psql(f"ALTER ROLE {self.role} PASSWORD '{password}'")
        if not self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"):
            self._psql(f"CREATE DATABASE {self.database} OWNER {self.role}")
        self.password = password

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            self._run(self.bin / "pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", self.data)

    def drop_database(self):
        """Start over: drop and re-create the course's database (the tests' clean slate)."""
        self._psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        self._psql(f"CREATE DATABASE {self.database} OWNER {self.role}")

    # --- backups -------------------------------------------------------------------------------
    def dump(self, path):
        """The course's database into ``path`` (pg_dump's custom format), the file written by the
        caller (root), so the server's user needs no right on the backup folder."""
        with open(path, "wb") as out:
            subprocess.run(self._as_server_user(self.bin / "pg_dump", "-h", self.socket_dir, "-p", self.port,
                                                "--format=custom", self.database),
                           stdout=out, stderr=subprocess.PIPE, check=True, cwd="/")
        return Path(path)

    def restore(self, path):
        """The course's database as ``dump`` saved it: dropped, made again, filled from ``path``."""
        self.drop_database()
        with open(path, "rb") as dump:
            subprocess.run(self._as_server_user(self.bin / "pg_restore", "-h", self.socket_dir, "-p", self.port,
                                                "--exit-on-error", "-d", self.database),
                           stdin=dump, capture_output=True, check=True, cwd="/")

    def remove(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self):
        """SQLAlchemy URL (psycopg 3) of the course's database, over the Unix socket."""
        return (f"postgresql+psycopg://{self.role}:{self.password}@/{self.database}"
                f"?host={self.socket_dir}&port={self.port}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
