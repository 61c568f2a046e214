"""Every option of the exporter and the span processor, declared once.

Each field of :class:`Settings` says its default, the environment variables it is read from and
what it means; resolution (argument, then environment, then default), the ``repr`` (secrets
masked), the README's table and ``otel-langsmith doctor`` are all derived from those declarations,
so a new option is a new field here. :data:`Options`, the fronts' keyword arguments for type
checkers, mirrors the fields (a unit test holds the two together).

LangSmith's own variables (``LANGSMITH_*``, ``LANGCHAIN_*`` as fallbacks) hold what LangSmith users
already set; ``OTEL_EXPORTER_LANGSMITH_*`` hold this package's own options, as OpenTelemetry names
exporter settings. A value that cannot be parsed is logged and replaced by the default.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import requests
from opentelemetry.sdk.trace import ReadableSpan

from ._convert.redact import Hook
from ._retry import RetryPolicy

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.smith.langchain.com"

#: Which spans become runs: a function of the span (as it starts, for the processor; ended, for
#: the exporter).
SpanFilter = Callable[[ReadableSpan], bool]
COMPRESSIONS = ("auto", "zstd", "gzip", "none")


# -- parsing what the environment says ------------------------------------------------------------


def unquote(raw: str) -> str:
    """What users paste around a value: spaces and one pair of quotes (some env-file loaders keep them).

    >>> unquote(' "lsv2-key" ')
    'lsv2-key'
    """
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def _text(raw: str) -> str | None:
    return unquote(raw) or None


def _endpoint(raw: str) -> str:
    """A self-hosted base such as ``https://host/api/v1`` is kept; paths are appended to it.

    >>> _endpoint(' "https://host/api/v1/" ')
    'https://host/api/v1'
    """
    return unquote(raw).rstrip("/") or DEFAULT_ENDPOINT


# Seconds a duration may be at most: a thread cannot wait, nor a socket time out, much longer.
MAX_SECONDS = 1e9


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not (0 < value <= MAX_SECONDS):  # NaN fails too
        raise ValueError(f"must be a positive number of seconds, at most {MAX_SECONDS:g}")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not (0 <= value <= MAX_SECONDS):
        raise ValueError(f"must be a number of seconds >= 0, at most {MAX_SECONDS:g}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be an integer > 0")
    return value


def _flag(raw: str) -> bool:
    value = unquote(raw).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


SPAN_FILTERS = ("all", "llm")


def _span_filter(raw: str) -> str:
    value = raw.strip().lower()
    if value not in SPAN_FILTERS:
        raise ValueError(f"must be one of {', '.join(SPAN_FILTERS)} (or, as an argument, a function)")
    return value


def _compression(raw: str) -> str:
    value = raw.strip().lower()
    if value not in COMPRESSIONS:
        raise ValueError(f"must be one of {', '.join(COMPRESSIONS)}")
    return value


# -- declaring an option ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """How a setting is read: from which variables, parsed so."""

    doc: str
    #: None: an argument only (objects: hooks, a policy, a session).
    parse: Callable[[str], Any] | None = None
    #: Read from LangSmith's own ``LANGSMITH_<this>`` (then ``LANGCHAIN_<this>``); by default from
    #: this package's ``OTEL_EXPORTER_LANGSMITH_<FIELD NAME>``.
    langsmith: str | None = None
    #: More variables, after those (older spellings).
    also: tuple[str, ...] = ()
    #: Shown as ``<set>``/``<unset>``: never printed, logged or sent anywhere but the endpoint.
    secret: bool = False
    #: Whether an argument is an object this setting takes as it is (a function for a hook or a
    #: filter, a policy, a session); None: only text, parsed.
    accepts: Callable[[Any], bool] | None = None

    def variables(self, name: str) -> tuple[str, ...]:
        """The variables a setting called ``name`` is read from, the first set winning."""
        if self.parse is None:
            return ()
        if self.langsmith is not None:
            return (f"LANGSMITH_{self.langsmith}", f"LANGCHAIN_{self.langsmith}", *self.also)
        return (f"OTEL_EXPORTER_LANGSMITH_{name.upper()}", *self.also)


def _option(
    default: Any,
    parse: Any,
    doc: str,
    *,
    langsmith: str | None = None,
    also: tuple[str, ...] = (),
    secret: bool = False,
    accepts: Callable[[Any], bool] | None = None,
) -> Any:
    return field(default=default, metadata={"option": Option(doc, parse, langsmith, also, secret, accepts)})


@dataclass(frozen=True, repr=False)
class Settings:
    """Every setting, resolved once. Build it with :meth:`resolve`.

    >>> Settings.resolve(project="demo", environ={}).project
    'demo'
    """

    tracing: bool = _option(
        True,
        _flag,
        "`false` turns tracing to LangSmith off: nothing is sent (unset: on)",
        langsmith="TRACING",
        also=("LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2"),
    )
    api_key: str | None = _option(None, _text, "LangSmith API key", langsmith="API_KEY", secret=True)
    endpoint: str = _option(
        DEFAULT_ENDPOINT, _endpoint, "API base URL; self-hosted: `https://host/api/v1`", langsmith="ENDPOINT"
    )
    project: str = _option("default", _text, "project of the runs whose spans name none", langsmith="PROJECT")
    workspace_id: str | None = _option(
        None, _text, "sent as `X-Tenant-Id` (organization-scoped keys)", langsmith="WORKSPACE_ID"
    )
    timeout: float = _option(10.0, _positive_float, "seconds one HTTP request may take, start to end")
    shutdown_grace: float = _option(
        3.0,
        _non_negative_float,
        "seconds an unresponsive endpoint is given at shutdown before the rest is spooled or counted lost",
    )
    compression: str = _option(
        "auto", _compression, "`auto` (zstd when the server advertises it), `zstd`, `gzip` or `none`"
    )
    max_queue_bytes: int = _option(
        128 << 20, _positive_int, "bytes of undelivered runs kept in memory; the oldest are dropped beyond it"
    )
    spool_dir: str | None = _option(
        None, _text, "directory where undelivered runs survive a restart (created 0700, files 0600)"
    )
    spool_max_bytes: int = _option(512 << 20, _positive_int, "bytes the spool directory may hold")
    parent_wait: float = _option(
        300.0, _non_negative_float, "exporter: seconds a span waits for its parent before it is sent as a root"
    )
    max_pending_spans: int = _option(20_000, _positive_int, "exporter: spans that may wait for their parents at once")
    max_pending_bytes: int = _option(
        64 << 20, _positive_int, "exporter: bytes the spans waiting for their parents may hold"
    )
    flush_interval: float = _option(1.0, _positive_float, "processor: seconds between sends of ended spans")
    live_after: float = _option(
        5.0, _non_negative_float, "processor: a span open this long (seconds) is posted as in progress"
    )
    open_span_ttl: float = _option(
        3600.0, _positive_float, "processor: a span open this long (seconds) is forgotten, with a log line"
    )
    span_filter: str | SpanFilter = _option(
        "all",
        _span_filter,
        "`all`; `llm`: only spans an LLM dialect recognises (and those with a `langsmith.*` attribute), "
        "each under its nearest kept ancestor; or a function `span -> bool`",
        accepts=callable,
    )
    hide_inputs: bool = _option(False, _flag, "send `{}` as every run's inputs", langsmith="HIDE_INPUTS")
    hide_outputs: bool = _option(False, _flag, "send `{}` as every run's outputs", langsmith="HIDE_OUTPUTS")
    process_inputs: Hook | None = _option(
        None,
        None,
        "a function `inputs -> inputs` (None drops them); one that raises hides them; "
        'what is not a dict is sent as `{"input": value}`',
        accepts=callable,
    )
    process_outputs: Hook | None = _option(None, None, "the same for outputs", accepts=callable)
    retry_policy: RetryPolicy = _option(
        RetryPolicy(),
        None,
        "backoff between attempts (`otel_langsmith.RetryPolicy`)",
        accepts=lambda value: isinstance(value, RetryPolicy),
    )
    session: requests.Session | None = _option(
        None,
        None,
        "a `requests.Session` to send with (proxies, TLS)",
        accepts=lambda value: isinstance(value, requests.Session),
    )

    @classmethod
    def resolve(cls, *, environ: Mapping[str, str] | None = None, **arguments: Any) -> Settings:
        """Each setting from its argument, else the environment, else its default.

        An unknown argument is a ``TypeError``, as for any function; an argument or variable
        that cannot be parsed is logged and replaced by the default.
        """
        env = os.environ if environ is None else environ
        known = {option.name for option in dataclasses.fields(cls)}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        values = {}
        for declared in dataclasses.fields(cls):
            value = _resolve(declared, arguments.get(declared.name), env)
            if value is not _DEFAULT:
                values[declared.name] = value
        return cls(**values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={shown}" for name, shown, _ in self.described())
        return f"Settings({shown})"

    def described(self) -> Iterator[tuple[str, str, Option]]:
        """(name, value as it may be shown, declaration) of every setting: secrets masked."""
        for declared in dataclasses.fields(self):
            option: Option = declared.metadata["option"]
            value = getattr(self, declared.name)
            if option.secret:
                shown = "<set>" if value else "<unset>"
            elif declared.name == "endpoint":
                shown = repr(safe_url(value))
            elif value is None or isinstance(value, (str, int, float, bool)):
                shown = repr(value)
            else:
                shown = f"<{type(value).__name__}>"
            yield declared.name, shown, option

    def problems(self) -> list[str]:
        """What makes sending impossible, whatever the endpoint does: each a line for the user."""
        found = []
        endpoint = _endpoint_problem(self.endpoint)
        if endpoint is not None:
            found.append(f"LANGSMITH_ENDPOINT {safe_url(self.endpoint)!r} {endpoint}")
        if self.api_key is not None and not _header_safe(self.api_key):
            found.append("LANGSMITH_API_KEY holds characters an HTTP header cannot carry: was it pasted whole?")
        return found


def _endpoint_problem(endpoint: str) -> str | None:
    try:
        parsed = urllib.parse.urlsplit(endpoint)
    except ValueError as exc:  # an unclosed IPv6 bracket
        return f"cannot be parsed ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"is not an http(s) URL (for LangSmith's cloud: {DEFAULT_ENDPOINT})"
    try:
        parsed.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"has an invalid port ({exc})"
    return None


class Options(TypedDict, total=False):
    """The keyword arguments of the exporter and the processor: the fields of :class:`Settings`."""

    tracing: bool
    api_key: str | None
    endpoint: str
    project: str
    workspace_id: str | None
    timeout: float
    shutdown_grace: float
    compression: str
    max_queue_bytes: int
    spool_dir: str | None
    spool_max_bytes: int
    parent_wait: float
    max_pending_spans: int
    max_pending_bytes: int
    flush_interval: float
    live_after: float
    open_span_ttl: float
    span_filter: str | SpanFilter
    hide_inputs: bool
    hide_outputs: bool
    process_inputs: Hook | None
    process_outputs: Hook | None
    retry_policy: RetryPolicy
    session: requests.Session | None


_DEFAULT = object()


def _resolve(declared: dataclasses.Field[Any], argument: Any, env: Mapping[str, str]) -> Any:
    option: Option = declared.metadata["option"]
    if argument is not None:
        if option.accepts is not None and option.accepts(argument):
            return argument
        if option.parse is None or callable(argument):
            # A function or class where a value belongs (``timeout=lambda: 5``) would fail later,
            # on the sender's thread or at shutdown.
            logger.warning(
                "Invalid value for the %s argument (a %s); using the default", declared.name, type(argument).__name__
            )
            return _DEFAULT
        if isinstance(argument, bool) and option.parse is _flag:
            return argument
        try:
            return option.parse(str(argument))
        except ValueError as exc:
            logger.warning("Invalid value for the %s argument (%s); using the default", declared.name, exc)
            return _DEFAULT
    for variable in option.variables(declared.name):
        raw = env.get(variable)
        if raw is None or raw.strip() == "":
            continue
        assert option.parse is not None
        try:
            return option.parse(raw)
        except ValueError as exc:
            shown = "<set>" if option.secret else repr(raw)
            logger.warning("Invalid value %s for %s (%s); using the default", shown, variable, exc)
            return _DEFAULT
    return _DEFAULT


def _header_safe(value: str) -> bool:
    """Whether an HTTP header can carry ``value``: latin-1, and no line break or other control."""
    return all((" " <= character <= "\xff" and character != "\x7f") or character == "\t" for character in value)


def safe_url(url: str) -> str:
    """The URL without a password in it, for log lines.

    >>> safe_url("https://user:secret@host/api")
    'https://user:***@host/api'
    """
    try:
        # Without a scheme, "user:password@host" would read as a scheme and a path.
        parts = urllib.parse.urlsplit(url if "//" in url else f"//{url}")
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    shown = urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))
    return shown if "//" in url else shown.removeprefix("//")


def settings_table() -> str:
    """The README's configuration table, in Markdown."""
    rows = ["| argument | environment | default | meaning |", "|---|---|---|---|"]
    for declared in dataclasses.fields(Settings):
        option: Option = declared.metadata["option"]
        env = " / ".join(f"`{name}`" for name in option.variables(declared.name)) or "(argument only)"
        default = declared.default
        if default is None:
            shown = "none"
        elif isinstance(default, (str, int, float, bool)):
            shown = f"`{default}`"
        else:
            shown = f"`{type(default).__name__}()`"
        rows.append(f"| `{declared.name}` | {env} | {shown} | {option.doc} |")
    return "\n".join(rows)
