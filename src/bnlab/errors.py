"""Errors that carry a message meant for the user: printed as one line, never as a traceback."""


class BnlabError(Exception):
    """Base class: ``str(err)`` is the whole message a user needs, remedy included."""


class ConfigError(BnlabError):
    """A configuration value is out of range or inconsistent; the message names the key."""


class DataError(BnlabError):
    """A dataset cannot be found, downloaded or read; the message names the folder and remedy."""
