"""``postgresql://user@host:port/db?schema=name``: libpq connection info plus a schema.

``schema`` is ours, not libpq's: it is taken out of the URL, created if missing, and put
first on the ``search_path`` of every connection, so one database can hold several
platforms (or test runs) side by side. ``options=-c search_path=…`` works as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from squall.errors import ConfigError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PgUrl:
    conninfo: str  # for psycopg.connect
    schema: str | None


def parse_url(url: str) -> PgUrl:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    if schema is not None and not _NAME.match(schema):
        raise ConfigError(
            f"store URL: schema {schema!r} is invalid: lower-case letters, digits and '_',"
            " starting with a letter or '_'",
            field="store",
        )
    rest = [(key, value) for key, value in query if key not in ("schema", "options")]
    options = " ".join(value for key, value in query if key == "options")
    if schema is not None:
        # Our schema first; public after it, for extensions installed there.
        options = f"{options} -c search_path={schema},public".strip()
    if options:
        rest.append(("options", options))
    # libpq takes both spellings of the scheme; keep the one given.
    conninfo = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
    return PgUrl(conninfo=conninfo, schema=schema)


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
