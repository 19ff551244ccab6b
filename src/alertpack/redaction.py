"""The one rule that keeps secrets out of every text alertpack shows, logs or stores.

A credential is held in a `Secret`, which never prints its value. Every text
that may carry one (a log line of ours or of librdkafka, an error, a failure
reason, a ``repr``, ``alertpack config``) goes through `redact`, which masks
as ``********``:

- the secret values the caller knows (passwords, SASL secrets, secret
  librdkafka properties, the base64 of a basic-authentication pair);
- the password of any ``user:password@`` user-info, in a URL or a Kafka
  server string, and a token given alone as user-info (``https://TOKEN@host``);
- the value of any URL query parameter whose name looks secret
  (``?token=``, ``api_key=``, ``password=``, ...);
- the credentials of any ``Authorization`` (or ``Proxy-Authorization``)
  header, ``Basic ...``, ``Bearer ...`` or bare, as a server may echo it.

It lives at the ground of the package, so that the configuration
(`alertpack.config.config_text`) and the Kafka package
(`alertpack.kafka.settings`, which re-exports it) use the same rule.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

__all__ = [
    "REDACTED",
    "Secret",
    "basic_credentials",
    "looks_secret",
    "redact",
    "url_secrets",
]

#: what stands in a text where a secret was
REDACTED = "********"

# words in a property or parameter name that make its value a secret (sasl.password,
# ssl.key.password, ssl.key.pem, sasl.oauthbearer.client.secret, sasl.oauthbearer.config)
_SECRET_WORDS = ("password", "secret", "token", "key.pem", "jaas", "oauthbearer.config")

# ``user:password@`` as in ``https://user:password@host`` or a server string
# ``user:password@host:9092``: the password runs to the last ``@`` of the word
_USERINFO = re.compile(r"(?P<user>[^\s:/@\[\](),;'\"]*):(?P<password>[^\s/\[\],'\"]+)@")
# ``scheme://TOKEN@``: user-info without a password is a token (or a bare user name)
_TOKEN_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<token>[^\s:/@\[\](),;'\"]+)@"
)
# a URL query parameter whose name looks secret
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;][\w.-]*(?:token|passw|secret|api[_-]?key|apikey|signature|credential|auth)"
    r"[\w.-]*=)(?P<value>[^&;#\s'\"]+)",
    re.IGNORECASE,
)
# an Authorization header, as a server echoes it: ``Authorization: Basic dXNlcjpwdw==``,
# ``"authorization": "Bearer abc"``, ``Authorization=abc``
_AUTHORIZATION = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:basic|bearer|token|digest|negotiate)\s+)?(?P<credentials>[^\s\"',;}\]]+)",
    re.IGNORECASE,
)


class Secret:
    """A credential whose value never appears in ``repr``, ``str`` or formatting.

    Parameters
    ----------
    value : `str`
        The secret text; read it back with `reveal`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for handing to the client that needs it only."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling would write the value to disk or across processes; refuse.
        raise TypeError("a Secret cannot be pickled")

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def looks_secret(property_name: str) -> bool:
    """Whether a property of this name holds a secret (a password, key, token)."""
    name = property_name.lower()
    return any(word in name for word in _SECRET_WORDS)


def redact(text: object, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret masked: the one rule (see the module docstring).

    Parameters
    ----------
    text : `object`
        What is to be shown (its ``str``).
    secrets : iterable of `str`
        Secret values known to the caller (passwords, secret properties);
        each occurrence is replaced by ``********``, longest first.

    Returns
    -------
    text : `str`
        Also with every user-info password or token, secret query parameter
        and ``Authorization`` credential masked, known or not.
    """
    shown = str(text)
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        shown = shown.replace(secret, REDACTED)
    shown = _USERINFO.sub(lambda match: f"{match['user']}:{REDACTED}@", shown)
    shown = _TOKEN_USERINFO.sub(
        lambda match: match[0] if match["token"] == REDACTED else f"{match['scheme']}{REDACTED}@",
        shown,
    )
    shown = _SECRET_PARAMETER.sub(lambda match: f"{match['name']}{REDACTED}", shown)
    return _AUTHORIZATION.sub(
        lambda match: f"{match['name']}{match['scheme'] or ''}{REDACTED}", shown
    )


def basic_credentials(username: str, password: str) -> str:
    """The base64 of ``username:password``, as HTTP basic authentication sends it."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def url_secrets(text: str) -> list[str]:
    """The secrets in the user-info of the URLs and server strings in ``text``.

    Each password and token as written and %-decoded, and the base64 of the
    basic-authentication pair it makes: what a server may echo.
    """
    found: list[str] = []
    for match in _USERINFO.finditer(text):
        user, password = match["user"], match["password"]
        found += [password, urllib.parse.unquote(password)]
        found.append(
            basic_credentials(urllib.parse.unquote(user), urllib.parse.unquote(password))
        )
    for match in _TOKEN_USERINFO.finditer(text):
        token = match["token"]
        found += [token, urllib.parse.unquote(token), basic_credentials(
            urllib.parse.unquote(token), "")]
    return [secret for secret in found if secret]
