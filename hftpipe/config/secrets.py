"""Secrets come from environment variables only, never from the config file.

- venue API credentials: ``HFTPIPE_<VENUE>_API_KEY``, ``HFTPIPE_<VENUE>_API_SECRET`` and
  ``HFTPIPE_<VENUE>_API_PASSPHRASE`` (venue id upper-cased, e.g. ``HFTPIPE_BINANCEUSDM_API_KEY``);
- the Neo4j password: ``HFTPIPE_NEO4J_PASSWORD``.

An empty variable counts as unset. Nothing here ever formats a secret into a string.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError, ConfigIssue
from .schema import VENUES

NEO4J_PASSWORD_ENV = "HFTPIPE_NEO4J_PASSWORD"

#: Venues whose API needs a passphrase besides key and secret (ccxt's ``password``).
PASSPHRASE_VENUES: frozenset[str] = frozenset({"okx"})


def credential_env_vars(venue: str) -> tuple[str, str, str]:
    """The names of the (key, secret, passphrase) variables for ``venue``."""
    prefix = f"HFTPIPE_{venue.upper()}_API_"
    return prefix + "KEY", prefix + "SECRET", prefix + "PASSPHRASE"


@dataclass(frozen=True, repr=False, eq=True)
class Credentials:
    """API credentials of one venue. ``repr``/``str`` never show the secret values."""

    venue: str
    api_key: str
    secret: str
    passphrase: str | None = None

    def __repr__(self) -> str:
        passphrase = "None" if self.passphrase is None else "'***'"
        return f"Credentials(venue={self.venue!r}, api_key='***', secret='***', passphrase={passphrase})"

    __str__ = __repr__

    def ccxt_params(self) -> dict[str, str]:
        """The ccxt constructor entries: ``apiKey``, ``secret`` and, if set, ``password``."""
        params = {"apiKey": self.api_key, "secret": self.secret}
        if self.passphrase is not None:
            params["password"] = self.passphrase
        return params


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value else None


def api_credentials(venue: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials of ``venue`` from the environment, or None when none are set.

    Raises ``ValueError`` for an unknown venue id and :class:`ConfigError` when the variables
    are set only partly (a key without its secret, or an OKX key without its passphrase).
    """
    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r}; expected one of: {', '.join(VENUES)}")
    env = os.environ if environ is None else environ
    key_var, secret_var, pass_var = credential_env_vars(venue)
    key, secret, passphrase = _get(env, key_var), _get(env, secret_var), _get(env, pass_var)
    if key is None and secret is None and passphrase is None:
        return None
    issues = []
    if key is None:
        issues.append(ConfigIssue(key_var, f"is not set but other {venue} credentials are; set it too"))
    if secret is None:
        issues.append(ConfigIssue(secret_var, f"is not set but other {venue} credentials are; set it too"))
    if passphrase is None and venue in PASSPHRASE_VENUES:
        issues.append(ConfigIssue(pass_var, f"is not set; {venue} API keys need a passphrase"))
    if issues:
        raise ConfigError(issues, source="environment")
    assert key is not None and secret is not None
    return Credentials(venue=venue, api_key=key, secret=secret, passphrase=passphrase)


def neo4j_password(environ: Mapping[str, str] | None = None) -> str | None:
    """The Neo4j password from ``HFTPIPE_NEO4J_PASSWORD``, or None when unset."""
    env = os.environ if environ is None else environ
    return _get(env, NEO4J_PASSWORD_ENV)
