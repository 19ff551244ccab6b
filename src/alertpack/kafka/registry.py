"""Register the alert schema with a Confluent schema registry (its REST API, over HTTP).

With a registry, the id it assigns goes in the wire header instead of
Rubin's ``major*100+minor``. User-info in the registry URL
(``https://user:password@host``) is sent as HTTP basic authentication and
never shown: messages name the URL without it.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from alertpack.errors import StreamError
from alertpack.kafka.settings import Secret

__all__ = ["register_schema"]


def _without_userinfo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _basic_authorization(url: str) -> dict[str, str]:
    """The ``Authorization`` header for the user-info of ``url`` (none without)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return {}
    user_password = f"{urllib.parse.unquote(parts.username)}:"
    user_password += urllib.parse.unquote(parts.password or "")
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}


def register_schema(
    registry_url: str | Secret,
    subject: str,
    definition: Mapping[str, Any],
    *,
    timeout: float = 10.0,
) -> int:
    """Register an Avro schema with a Confluent schema registry and return its id.

    Registering a schema the subject already has returns the existing id.

    Parameters
    ----------
    registry_url : `str` or `~alertpack.kafka.settings.Secret`
        The registry, optionally with ``user:password@`` for basic authentication.
    subject : `str`
        Subject to register under (``{topic}-value``).
    definition : mapping
        The Avro schema.
    timeout : `float`
        Seconds the request may take.

    Raises
    ------
    StreamError
        When the registry cannot be reached or refuses the schema.
    """
    if isinstance(registry_url, Secret):
        registry_url = registry_url.reveal()
    base = _without_userinfo(registry_url).rstrip("/")
    url = f"{base}/subjects/{urllib.parse.quote(subject, safe='')}/versions"
    headers = {
        "Content-Type": "application/vnd.schemaregistry.v1+json",
        **_basic_authorization(registry_url),
    }
    body = json.dumps({"schema": json.dumps(definition)}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace")
        raise StreamError(
            f"schema registry refused subject {subject!r} at {url}: HTTP {error.code} {detail}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StreamError(f"schema registry at {url} cannot be used: {error}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
        raise StreamError(f"schema registry at {url} answered without an id: {answer!r}")
    return int(answer["id"])
