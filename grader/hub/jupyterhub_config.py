"""JupyterHub for the course: one OS user per student, formgrader for the instructor only.

`make hub` (python -m grader.hub up) prepares the machine and starts JupyterHub with this file;
every setting it needs comes from the environment that command sets (defaults in brackets):

  COURSE_ID [backprop]                 nbgrader's course id; the formgrader service's name
  COURSE_ROSTER [grader/roster.csv]    who may log in: student_id,name
  COURSE_INSTRUCTOR [instructor]       the instructor's user: hub admin, formgrader
  COURSE_HUB_COURSE_DIR [~instructor/<course id>]  the instructor's course (solutions, gradebook)
  COURSE_EXCHANGE [/srv/nbgrader/exchange]          nbgrader's exchange
  COURSE_HUB_STATE [/srv/nbgrader/hub] the hub's own files: its database, cookie secret, passwords
  COURSE_DB_URL                        the gradebook (PostgreSQL); only formgrader sees it
  COURSE_HUB_IP [127.0.0.1], COURSE_HUB_PORT [8000]  where people log in
  COURSE_HUB_AUTH [roster]             roster | pam | oauth (below)

Students' servers: LocalProcessSpawner, so each runs as the student's own OS user in their own
home, with grader/lab/student on JUPYTER_CONFIG_PATH (Assignment List and Validate; no
formgrader, no create-assignment, no course list). Formgrader: nbgrader's documented pattern, a
hub-managed service named after the course, run as the instructor in the course folder with
grader/lab/instructor, which only the group formgrade-<course id> may open (JupyterHub answers
403 to anyone else).
"""
import csv
import json
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))  # grader.hub.auth
VENV_BIN = Path(sys.executable).parent

COURSE_ID = os.environ.get("COURSE_ID", "backprop")
ROSTER = os.environ.get("COURSE_ROSTER", str(REPO / "grader" / "roster.csv"))
INSTRUCTOR = os.environ.get("COURSE_INSTRUCTOR", "instructor")
COURSE_DIR = os.environ.get("COURSE_HUB_COURSE_DIR", os.path.expanduser(f"~{INSTRUCTOR}/{COURSE_ID}"))
EXCHANGE = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
STATE = Path(os.environ.get("COURSE_HUB_STATE", "/srv/nbgrader/hub"))
AUTH = os.environ.get("COURSE_HUB_AUTH", "roster")

with open(ROSTER, newline="", encoding="utf-8") as f:
    STUDENTS = [row["student_id"].strip() for row in csv.DictReader(f)]
TAS_FILE = STATE / "tas.json"  # teaching assistants: `python -m grader.hub add-ta <user>`
TAS = json.loads(TAS_FILE.read_text()) if TAS_FILE.exists() else []
ROSTER_TOKEN_FILE = STATE / "roster-api-token"  # written by `up`; `python -m grader.hub add ...`

# --- the hub itself ------------------------------------------------------------------------
c.JupyterHub.ip = os.environ.get("COURSE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("COURSE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("COURSE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('COURSE_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
# Stopping or restarting the hub leaves students' servers (and kernels) running; the next hub
# finds them again. Stop one with the admin page or `python -m grader.hub drop`.
c.JupyterHub.cleanup_servers = False

# --- who may log in ------------------------------------------------------------------------
# The roster decides, whatever the authenticator: anyone else is refused after logging in.
c.Authenticator.allowed_users = set(STUDENTS) | set(TAS) | {INSTRUCTOR}
c.Authenticator.allow_existing_users = True  # users added through the API log in without a restart
c.Authenticator.admin_users = {INSTRUCTOR}
if AUTH == "roster":
    # The local demo: a password per user, printed by `make hub` (COURSE_HUB_STATE/passwords.txt).
    c.JupyterHub.authenticator_class = "grader.hub.auth.RosterPasswordAuthenticator"
    c.RosterPasswordAuthenticator.password_file = str(STATE / "passwords.json")
elif AUTH == "pam":
    # The machine's own passwords (`passwd alice` for each user): JupyterHub's default PAM login.
    c.JupyterHub.authenticator_class = "pam"
elif AUTH == "oauth":
    # The university's single sign-on (OAuth2 / OpenID Connect) through oauthenticator's generic
    # class. Set in the environment: OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
    # OAUTH_CALLBACK_URL (https://<hub>/hub/oauth_callback), OAUTH2_AUTHORIZE_URL,
    # OAUTH2_TOKEN_URL, OAUTH2_USERDATA_URL, and OAUTH_USERNAME_CLAIM: the claim that holds the
    # roster's student id (the OS user name). For GitHub, Google, Azure AD, CILogon, ... use the
    # provider's own class instead (authenticator_class = "github", "google", "azuread", ...).
    c.JupyterHub.authenticator_class = "generic-oauth"
    c.GenericOAuthenticator.username_claim = os.environ.get("OAUTH_USERNAME_CLAIM", "preferred_username")
    c.GenericOAuthenticator.scope = os.environ.get("OAUTH_SCOPE", "openid profile email").split()
    c.GenericOAuthenticator.login_service = os.environ.get("OAUTH_LOGIN_SERVICE", "university login")
else:
    raise ValueError(f"COURSE_HUB_AUTH must be roster, pam or oauth, not {AUTH!r}")

# --- students' servers ---------------------------------------------------------------------
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"  # as the user's own uid
c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.env_keep = ["LANG", "LC_ALL"]  # nothing of the hub's own environment (COURSE_DB_URL)
c.Spawner.environment = {
    "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
    "JUPYTER_CONFIG_PATH": str(REPO / "grader" / "lab" / "student"),
    "COURSE_ID": COURSE_ID,
    "COURSE_EXCHANGE": EXCHANGE,
}

# --- formgrader: a service only the formgrade-<course> group may open ------------------------
c.JupyterHub.load_groups = {
    f"formgrade-{COURSE_ID}": {"users": [INSTRUCTOR, *TAS]},
    f"nbgrader-{COURSE_ID}": {"users": STUDENTS},
}
c.JupyterHub.load_roles = [{
    "name": f"formgrade-{COURSE_ID}",
    "groups": [f"formgrade-{COURSE_ID}"],
    "scopes": [f"access:services!service={COURSE_ID}", "list:services",
               f"read:services!service={COURSE_ID}"],
}]
c.JupyterHub.services = [{
    "name": COURSE_ID,
    "url": f"http://127.0.0.1:{os.environ.get('COURSE_HUB_SERVICE_PORT', '9999')}",
    "command": [str(VENV_BIN / "jupyterhub-singleuser"), f"--ServerApp.root_dir={COURSE_DIR}"],
    "user": INSTRUCTOR,
    "cwd": COURSE_DIR,
    "oauth_no_confirm": True,
    "environment": {
        "HOME": os.path.expanduser(f"~{INSTRUCTOR}"),
        "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": str(REPO / "grader" / "lab" / "instructor"),
        "JUPYTERHUB_DEFAULT_URL": "/formgrader",
        "COURSE_ID": COURSE_ID,
        "COURSE_EXCHANGE": EXCHANGE,
    },
}]
if os.environ.get("COURSE_DB_URL"):  # the gradebook: formgrader's, never a student's
    c.JupyterHub.services[0]["environment"]["COURSE_DB_URL"] = os.environ["COURSE_DB_URL"]

# --- the roster commands: add, drop, reset a password, add a TA, through the REST API ---------
if ROSTER_TOKEN_FILE.exists():
    c.JupyterHub.services.append({"name": "course-roster", "api_token": ROSTER_TOKEN_FILE.read_text().strip()})
    c.JupyterHub.load_roles.append({
        "name": "course-roster", "services": ["course-roster"],
        "scopes": ["admin:users", "admin:servers", "admin:groups", "list:users", "read:users"],
    })
