"""Settings of the exporter, from keyword arguments and the environment.

LangSmith's own variables (``LANGSMITH_*``, with the ``LANGCHAIN_*`` spellings as fallbacks) hold
what LangSmith users already set; ``OTEL_EXPORTER_LANGSMITH_*`` hold the exporter's own options,
the way OpenTelemetry names exporter settings. An argument wins over the environment; a value that
cannot be parsed is logged and replaced by the default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.smith.langchain.com"
DEFAULT_PROJECT = "default"

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Every setting the exporter reads, resolved once at construction.

    Build it with :meth:`Settings.resolve`, which applies the precedence rules.
    """

    api_key: str | None
    endpoint: str
    project: str
    workspace_id: str | None
    #: Socket timeout of one HTTP request, in seconds.
    timeout: float
    #: How long a span waits for its parent before it is sent as a root, in seconds.
    parent_wait: float
    #: How many spans may wait for their parents at once.
    max_pending_spans: int
    #: How many bytes (estimated, serialized) the waiting spans may hold at once.
    max_pending_bytes: int
    #: Deadline of one export, retries included, in seconds.
    export_timeout: float
    #: ``auto`` (zstd when the server advertises it), ``zstd``, ``gzip`` or ``none``.
    compression: str
    #: Bytes of undelivered batches kept in memory for later retries.
    max_queue_bytes: int
    #: Directory where undelivered batches survive a restart; None keeps them in memory only.
    spool_dir: str | None
    #: Bytes the spool directory may hold.
    spool_max_bytes: int
    #: Span processor: seconds between sends of ended spans.
    flush_interval: float
    #: Span processor: a span open longer than this (seconds) is posted as in progress.
    live_after: float
    #: Span processor: a span still open after this many seconds is forgotten (with a log line).
    open_span_ttl: float
    #: Send ``{}`` instead of inputs / outputs (``LANGSMITH_HIDE_INPUTS`` / ``LANGSMITH_HIDE_OUTPUTS``).
    hide_inputs: bool = False
    hide_outputs: bool = False

    def __repr__(self) -> str:
        # The API key must never reach a log line, even through a repr.
        key = "set" if self.api_key else "unset"
        return (
            f"Settings(api_key=<{key}>, endpoint={self.endpoint!r}, project={self.project!r}, "
            f"workspace_id={self.workspace_id!r}, timeout={self.timeout}, parent_wait={self.parent_wait}, "
            f"max_pending_spans={self.max_pending_spans}, max_pending_bytes={self.max_pending_bytes}, "
            f"export_timeout={self.export_timeout}, compression={self.compression!r}, "
            f"max_queue_bytes={self.max_queue_bytes}, spool_dir={self.spool_dir!r}, "
            f"spool_max_bytes={self.spool_max_bytes}, flush_interval={self.flush_interval}, "
            f"live_after={self.live_after}, open_span_ttl={self.open_span_ttl})"
        )

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None = None,
        endpoint: str | None = None,
        project: str | None = None,
        workspace_id: str | None = None,
        timeout: float | None = None,
        parent_wait: float | None = None,
        max_pending_spans: int | None = None,
        max_pending_bytes: int | None = None,
        export_timeout: float | None = None,
        compression: str | None = None,
        max_queue_bytes: int | None = None,
        spool_dir: str | None = None,
        spool_max_bytes: int | None = None,
        flush_interval: float | None = None,
        live_after: float | None = None,
        open_span_ttl: float | None = None,
        hide_inputs: bool | None = None,
        hide_outputs: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve every setting: argument, then environment, then default.

        >>> Settings.resolve(project="demo", environ={}).project
        'demo'
        """
        env = os.environ if environ is None else environ
        return cls(
            api_key=_first(api_key, _langsmith_env(env, "API_KEY")),
            endpoint=normalize_endpoint(_first(endpoint, _langsmith_env(env, "ENDPOINT")) or DEFAULT_ENDPOINT),
            project=_first(project, _langsmith_env(env, "PROJECT")) or DEFAULT_PROJECT,
            workspace_id=_first(workspace_id, _langsmith_env(env, "WORKSPACE_ID")),
            timeout=_option(env, "TIMEOUT", timeout, 10.0, _positive_float),
            parent_wait=_option(env, "PARENT_WAIT", parent_wait, 300.0, _non_negative_float),
            max_pending_spans=_option(env, "MAX_PENDING_SPANS", max_pending_spans, 20_000, _positive_int),
            max_pending_bytes=_option(env, "MAX_PENDING_BYTES", max_pending_bytes, 64 * 1024 * 1024, _positive_int),
            export_timeout=_option(env, "EXPORT_TIMEOUT", export_timeout, 30.0, _positive_float),
            compression=_option(env, "COMPRESSION", compression, "auto", _compression),
            max_queue_bytes=_option(env, "MAX_QUEUE_BYTES", max_queue_bytes, 128 * 1024 * 1024, _positive_int),
            spool_dir=_first(spool_dir, env.get("OTEL_EXPORTER_LANGSMITH_SPOOL_DIR")),
            spool_max_bytes=_option(env, "SPOOL_MAX_BYTES", spool_max_bytes, 512 * 1024 * 1024, _positive_int),
            flush_interval=_option(env, "FLUSH_INTERVAL", flush_interval, 1.0, _positive_float),
            live_after=_option(env, "LIVE_AFTER", live_after, 5.0, _non_negative_float),
            open_span_ttl=_option(env, "OPEN_SPAN_TTL", open_span_ttl, 3600.0, _positive_float),
            hide_inputs=hide_inputs if hide_inputs is not None else _flag(_langsmith_env(env, "HIDE_INPUTS")),
            hide_outputs=hide_outputs if hide_outputs is not None else _flag(_langsmith_env(env, "HIDE_OUTPUTS")),
        )


def normalize_endpoint(endpoint: str) -> str:
    """Strip what users paste around an endpoint: spaces, quotes and trailing slashes.

    A self-hosted base such as ``https://host/api/v1`` is kept as it is; paths are appended to it.

    >>> normalize_endpoint(' "https://host/api/v1/" ')
    'https://host/api/v1'
    """
    return endpoint.strip().strip("'\"").rstrip("/")


def _first(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _langsmith_env(env: Mapping[str, str], name: str) -> str | None:
    return _first(env.get(f"LANGSMITH_{name}"), env.get(f"LANGCHAIN_{name}"))


def _option(
    env: Mapping[str, str],
    name: str,
    argument: T | None,
    default: T,
    parse: Callable[[str], T],
) -> T:
    variable = f"OTEL_EXPORTER_LANGSMITH_{name}"
    if argument is not None:
        try:
            return parse(str(argument))
        except ValueError as exc:
            logger.warning("Invalid value for %s argument (%s); using the default %r", name.lower(), exc, default)
            return default
    raw = env.get(variable)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        logger.warning("Invalid value %r for %s (%s); using the default %r", raw, variable, exc, default)
        return default


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number >= 0")
    return value


def _flag(raw: str | None) -> bool:
    return raw is not None and raw.strip().lower() in ("1", "true", "yes", "on")


COMPRESSIONS = ("auto", "zstd", "gzip", "none")


def _compression(raw: str) -> str:
    value = raw.strip().lower()
    if value not in COMPRESSIONS:
        raise ValueError(f"must be one of {', '.join(COMPRESSIONS)}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be an integer > 0")
    return value
