"""Entry point loaded by Kamailio's app_python3: mod_init() returns the router object."""
from kemi.router import Router


def mod_init() -> Router:
    """Called once before Kamailio forks its workers; no connections are opened here."""
    return Router()
