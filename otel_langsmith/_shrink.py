"""Make a run small enough for any request, rather than drop it.

A run larger than the server's byte limit keeps its identity, name, times, status and metadata
keys; its largest fields lose the ends of their long strings and long lists, each cut marked in the
value itself, and ``extra.metadata.otel_langsmith_truncated`` records every shrunk field's original
size in bytes. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from . import _wire as wire

MARK = "...[truncated by otel-langsmith]"
_SHRINKABLE = ("inputs", "outputs", "events", "extra", "error")
_MIN_TEXT = 32
_MIN_ITEMS = 4
# Fields of the run's main part that can grow without bound (a generated name, a project): beyond
# this many bytes, a run that must shrink has them cut too.
_MAIN_TEXT = ("name", "session_name", "tags")
_MAX_MAIN_FIELD = 4096


def _cut(value: Any, max_text: int, max_items: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= max_text else value[:max_text] + MARK
    if isinstance(value, dict):
        items = list(value.items())
        cut = {key: _cut(item, max_text, max_items) for key, item in items[:max_items]}
        if len(items) > max_items:
            cut[MARK] = f"{len(items) - max_items} more keys"
        return cut
    if isinstance(value, (list, tuple)):
        kept = [_cut(item, max_text, max_items) for item in value[:max_items]]
        if len(value) > max_items:
            kept.append(f"{MARK} {len(value) - max_items} more items")
        return kept
    return value


def _size(value: Any) -> int:
    return len(wire.dumps(value))


def _shrink_field(value: Any, budget: int) -> Any:
    """The value with ever shorter strings and lists until it fits ``budget`` bytes."""
    max_text, max_items = max(budget // 2, _MIN_TEXT), max(budget // 64, _MIN_ITEMS)
    while True:
        cut = _cut(value, max_text, max_items)
        if _size(cut) <= budget:
            return cut
        if max_text == _MIN_TEXT and max_items == _MIN_ITEMS:
            return MARK if isinstance(value, str) else ([] if isinstance(value, list) else {"": MARK})
        max_text, max_items = max(max_text // 2, _MIN_TEXT), max(max_items // 2, _MIN_ITEMS)


def shrink_run(run: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], dict[str, int]]:
    """A copy of ``run`` whose serialized fields total at most about ``max_bytes``.

    Returns the run and the original size of each field it shrank (empty: nothing to do).
    """
    sizes = {field: _size(run[field]) for field in _SHRINKABLE if run.get(field) is not None}
    main = _size({k: v for k, v in run.items() if k not in wire.OUT_OF_BAND})
    # Room for the marker this function adds to the metadata.
    excess = main + sum(sizes.values()) + 256 - max_bytes
    if excess <= 0:
        return run, {}
    shrunk = dict(run)
    originals: dict[str, int] = {}
    # A name, project or tags of kilobytes are cut first: no run needs them that long.
    for field in _MAIN_TEXT:
        value = run.get(field)
        if isinstance(value, (str, list)) and (size := _size(value)) > _MAX_MAIN_FIELD:
            shrunk[field] = _cut(value, _MAX_MAIN_FIELD // 2, _MIN_ITEMS * 4)
            originals[field] = size
            excess -= size - _size(shrunk[field])
    for field in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if excess <= 0:
            break
        budget = max(sizes[field] - excess, 0)
        shrunk[field] = _shrink_field(run[field], budget)
        originals[field] = sizes[field]
        excess -= sizes[field] - _size(shrunk[field])
    extra = shrunk.get("extra")
    extra = dict(extra) if isinstance(extra, dict) else {}
    metadata = extra.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    # The keys that find and price a run survive whatever the cut did to the rest, as long as they
    # are what such keys hold (a model's name, an id), not a document under such a name.
    original_extra = run.get("extra")
    original_metadata = original_extra.get("metadata") if isinstance(original_extra, dict) else None
    if isinstance(original_metadata, dict):
        for key, value in original_metadata.items():
            if key.startswith(("OTEL_", "ls_")) and _scalar(value):
                metadata[key] = value
    metadata["otel_langsmith_truncated"] = originals
    extra["metadata"] = metadata
    shrunk["extra"] = extra
    return shrunk, originals


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, bool)) or (isinstance(value, str) and len(value) <= _MAX_MAIN_FIELD)
