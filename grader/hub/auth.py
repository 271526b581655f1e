"""The local demo's login: the roster's users with the passwords `make hub` printed.

For a real class switch the authenticator in grader/hub/jupyterhub_config.py (COURSE_HUB_AUTH):
``pam`` (the machine's own passwords) or ``oauth`` (the university's single sign-on).
"""
from jupyterhub.auth import Authenticator
from traitlets import Unicode

from .accounts import check_password


class RosterPasswordAuthenticator(Authenticator):
    """Accepts a user whose password matches the hash in ``password_file`` (accounts.py)."""

    password_file = Unicode(help="JSON {user: {salt, hash}} written by `make hub`").tag(config=True)

    async def authenticate(self, handler, data):
        user, password = data.get("username", ""), data.get("password", "")
        if check_password(self.password_file, user, password):
            return user
        return None
