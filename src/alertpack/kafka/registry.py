"""Register the alert schema with a Confluent schema registry (its REST API, over HTTP).

With a registry, the id it assigns goes in the wire header instead of
Rubin's ``major*100+minor``. Credentials (the user-info of the registry URL,
``https://user:password@host``, or a pair given apart, e.g. from
``AP_SCHEMA_REGISTRY_USERNAME``/``_PASSWORD``) are sent as HTTP basic
authentication and never shown: messages name the URL without them, the
``Authorization`` header is dropped when a redirect leads to another host,
and what the registry answers is never copied into a message as it is (only
its error code and message, masked by the one redaction rule, printable and
short).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import IO, Any

from alertpack.errors import StreamError
from alertpack.redaction import Secret, basic_credentials, redact, url_secrets

__all__ = ["register_schema"]

# the most of a registry's own message a reason carries
_MESSAGE_CHARS = 200


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _credentials(url: str, pair: tuple[str, Secret] | None) -> tuple[str, str] | None:
    """The basic-authentication pair: given apart, else the URL's user-info."""
    if pair is not None:
        return pair[0], pair[1].reveal()
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    return urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


class _SameOriginAuthorization(urllib.request.HTTPRedirectHandler):
    """Redirects that carry the ``Authorization`` header only to the same scheme, host and port."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameOriginAuthorization)


def _printable(text: str) -> str:
    """``text`` on one line, without control characters, at most `_MESSAGE_CHARS` long."""
    shown = "".join(c if c.isprintable() else " " for c in text).strip()
    return shown if len(shown) <= _MESSAGE_CHARS else shown[: _MESSAGE_CHARS - 3] + "..."


def _answer_detail(body: bytes, secrets: list[str]) -> str:
    """What a refusal says: the registry's error code and message (masked), never the body."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"a {len(body)}-byte answer that is not the registry's JSON error"
    if not isinstance(answer, dict):
        return "an answer that is not the registry's JSON error"
    parts = []
    if isinstance(answer.get("error_code"), int):
        parts.append(f"error_code {answer['error_code']}")
    if isinstance(answer.get("message"), str):
        parts.append(_printable(redact(answer["message"], secrets)))
    return ": ".join(parts) or "no error code or message"


def register_schema(
    registry_url: str | Secret,
    subject: str,
    definition: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    credentials: tuple[str, Secret] | None = None,
) -> int:
    """Register an Avro schema with a Confluent schema registry and return its id.

    Registering a schema the subject already has returns the existing id.

    Parameters
    ----------
    registry_url : `str` or `~alertpack.redaction.Secret`
        The registry, optionally with ``user:password@`` for basic authentication.
    subject : `str`
        Subject to register under (``{topic}-value``).
    definition : mapping
        The Avro schema.
    timeout : `float`
        Seconds the request may take.
    credentials : ``(username, Secret)``, optional
        Basic-authentication pair, instead of the URL's user-info
        (`~alertpack.kafka.settings.KafkaSettings.registry_credentials`).

    Raises
    ------
    StreamError
        When the registry cannot be reached or refuses the schema; the
        message holds no credential and no verbatim answer.
    """
    if isinstance(registry_url, Secret):
        registry_url = registry_url.reveal()
    base = _without_userinfo(registry_url).rstrip("/")
    url = f"{base}/subjects/{urllib.parse.quote(subject, safe='')}/versions"
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    secrets = url_secrets(registry_url)
    pair = _credentials(registry_url, credentials)
    if pair is not None:
        token = basic_credentials(*pair)
        headers["Authorization"] = f"Basic {token}"
        secrets += [pair[1], token]
    shown_url = redact(url, secrets)
    body = json.dumps({"schema": json.dumps(definition)}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = _answer_detail(error.read(64 * 1024), secrets)
        raise StreamError(
            f"schema registry refused subject {subject!r} at {shown_url}: HTTP {error.code} "
            f"({detail})"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = _printable(redact(getattr(error, "reason", error), secrets))
        raise StreamError(f"schema registry at {shown_url} cannot be used: {reason}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
        raise StreamError(f"schema registry at {shown_url} answered without a schema id")
    return int(answer["id"])
