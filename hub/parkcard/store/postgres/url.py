"""A PostgreSQL store's URL: the libpq URL asyncpg connects with, plus where the store's audit log lives."""

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

AUDIT_LOG_PARAM = "audit_log"       # ?audit_log=/path: the operator audit log (parkcard.oplog) of this database
AUDIT_LOG_DIR_DEFAULT = "var"


def split(url):
    """Return (url asyncpg connects with, audit log path, url for people: the password left out).

    The operator audit log is a local file anchored in the database (parkcard.oplog). Without
    ?audit_log= it is var/<database>.audit.log under the working directory, so the CLI and the hub
    must then run from the same folder.
    """
    parts = urlsplit(str(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    audit = [v for k, v in query if k == AUDIT_LOG_PARAM]
    rest = [(k, v) for k, v in query if k != AUDIT_LOG_PARAM]
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    database = parts.path.lstrip("/") or parts.username or "postgres"
    audit_log = Path(audit[-1]) if audit else Path(AUDIT_LOG_DIR_DEFAULT) / ("%s.audit.log"
                                                                              % re.sub(r"[^\w.-]", "_", database))
    shown = urlunsplit(parts._replace(netloc=re.sub(r":[^@/]*@", "@", parts.netloc), query=urlencode(rest)))
    return dsn, audit_log, shown


def with_audit_log(url, path):
    """Return url with ?audit_log=path added, unless it already names one."""
    parts = urlsplit(str(url))
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == AUDIT_LOG_PARAM for k, _v in query):
        return str(url)
    return urlunsplit(parts._replace(query=urlencode(query + [(AUDIT_LOG_PARAM, str(path))])))
