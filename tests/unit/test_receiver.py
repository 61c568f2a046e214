"""The local receiver refuses what LangSmith refuses, over real HTTP."""

import gzip
import json

import pytest
import requests
import zstandard

from otel_langsmith import _ids as ids
from otel_langsmith import _wire as wire

ROOT = ids.root_run_id(0xFEED)
CHILD = ids.span_run_id(0xBEEF)
T0 = 1_763_000_000_000_000


def root_run(**changes):
    run = {
        "id": ROOT,
        "trace_id": ROOT,
        "dotted_order": ids.segment(T0, ROOT),
        "name": "root",
        "run_type": "chain",
        "start_time": ids.iso_time(T0),
        "session_name": "p",
    }
    run.update(changes)
    return run


def child_run(start=T0 + 5, **changes):
    run = {
        "id": CHILD,
        "trace_id": ROOT,
        "parent_run_id": ROOT,
        "dotted_order": ids.segment(T0, ROOT) + "." + ids.segment(start, CHILD),
        "name": "child",
        "run_type": "tool",
        "start_time": ids.iso_time(start),
        "session_name": "p",
    }
    run.update(changes)
    return run


def post(receiver, runs, *, operation="post", encoding=None, key=None, path="/runs/multipart"):
    boundary = wire.new_boundary()
    body = wire.multipart_body([wire.encode_run(r, operation=operation) for r in runs], boundary)
    headers = {"Content-Type": wire.content_type(boundary), "x-api-key": key or receiver.api_key}
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "zstd":
        body = zstandard.ZstdCompressor().compress(body)
    if encoding:
        headers["Content-Encoding"] = encoding
    return requests.post(receiver.url + path, data=body, headers=headers, timeout=5)


@pytest.mark.parametrize("encoding", [None, "gzip", "zstd"])
def test_accepts_a_valid_tree_in_every_encoding(langsmith_receiver, encoding):
    response = post(langsmith_receiver, [root_run(inputs={"q": 1}), child_run()], encoding=encoding)
    assert response.status_code == 202, response.text
    runs = langsmith_receiver.runs
    assert runs[ROOT]["inputs"] == {"q": 1}
    assert runs[CHILD]["parent_run_id"] == ROOT
    assert langsmith_receiver.problems() == []


def test_requires_the_api_key(langsmith_receiver):
    response = post(langsmith_receiver, [root_run()], key="wrong")
    assert response.status_code == 401
    assert langsmith_receiver.runs == {}
    assert langsmith_receiver.rejected[0].headers["x-api-key"] == "<api key>"


def test_serves_info_under_a_self_hosted_prefix(langsmith_receiver):
    info = requests.get(langsmith_receiver.url + "/api/v1/info", timeout=5).json()
    assert info["batch_ingest_config"]["size_limit"] == 100
    assert post(langsmith_receiver, [root_run()], path="/api/v1/runs/multipart").status_code == 202


BAD_RUNS = {
    "root with two segments": (
        [root_run(dotted_order=ids.segment(T0, ROOT) + "." + ids.segment(T0, CHILD))],
        "dotted_order must contain a single part for root runs",
    ),
    "child with one segment": (
        [child_run(dotted_order=ids.segment(T0, CHILD), trace_id=CHILD)],
        "dotted_order must contain at least two parts for child runs",
    ),
    "trace id not first": (
        [root_run(trace_id=CHILD)],
        f"trace_id {CHILD} does not match first part of dotted_order",
    ),
    "child earlier than parent": (
        [child_run(start=T0 - 1)],
        "earlier than parent timestamp",
    ),
    "three fractional digits": (
        [root_run(dotted_order=ids.segment_time(T0)[:-4] + "Z" + ROOT)],
        "cannot parse",
    ),
    "last segment is another run": (
        [root_run(id=CHILD, dotted_order=ids.segment(T0, ROOT))],
        "does not match last part of dotted_order",
    ),
    "missing run type": ([root_run(run_type=None)], "missing required field 'run_type'"),
    "unknown run type": ([root_run(run_type="agent")], "invalid 'run_type'"),
    "no project": ([root_run(session_name=None)], "names no project"),
    "inputs not an object": ([root_run(inputs=[1])], "invalid 'inputs'"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_one_bad_run_rejects_the_whole_request(langsmith_receiver, case):
    runs, message = BAD_RUNS[case]
    good = root_run(
        id=ids.root_run_id(1), trace_id=ids.root_run_id(1), dotted_order=ids.segment(T0, ids.root_run_id(1))
    )
    response = post(langsmith_receiver, [good, *runs])
    assert response.status_code in (400, 422)
    assert message in response.json()["error"]
    assert langsmith_receiver.runs == {}


def test_refuses_a_broken_part_layout(langsmith_receiver):
    boundary = "bnd"
    body = wire.multipart_body([wire.encode_run(root_run())], boundary).replace(
        b"Content-Length: ", b"Content-Length: 1", 1
    )
    response = requests.post(
        langsmith_receiver.url + "/runs/multipart",
        data=body,
        headers={"Content-Type": wire.content_type(boundary), "x-api-key": langsmith_receiver.api_key},
        timeout=5,
    )
    assert response.status_code == 400 and "Content-Length" in response.json()["error"]


def test_merges_a_patch_into_its_post_in_either_order(langsmith_receiver):
    patch = {
        "id": CHILD,
        "trace_id": ROOT,
        "parent_run_id": ROOT,
        "dotted_order": child_run()["dotted_order"],
        "end_time": ids.iso_time(T0 + 50),
        "outputs": {"answer": 42},
    }
    assert post(langsmith_receiver, [patch], operation="patch").status_code == 202
    assert post(langsmith_receiver, [root_run(), child_run()]).status_code == 202
    merged = langsmith_receiver.runs[CHILD]
    assert merged["outputs"] == {"answer": 42} and merged["name"] == "child"
    assert merged["end_time"] == ids.iso_time(T0 + 50)
    assert langsmith_receiver.duplicate_posts == 0


def test_runs_batch_endpoint_takes_inline_runs(langsmith_receiver):
    body = json.dumps({"post": [root_run(inputs={"a": 1}), child_run()]})
    headers = {"Content-Type": "application/json", "x-api-key": langsmith_receiver.api_key}
    response = requests.post(langsmith_receiver.url + "/runs/batch", data=body, headers=headers, timeout=5)
    # T0 is in November 2025: older than a day, so the batch endpoint's time window refuses it.
    assert response.status_code == 400 and "older than" in response.json()["error"]
    now = ids.ns_to_us(__import__("time").time_ns())
    fresh = root_run(start_time=ids.iso_time(now), dotted_order=ids.segment(now, ROOT), inputs={"a": 1})
    body = json.dumps({"post": [fresh]})
    response = requests.post(langsmith_receiver.url + "/runs/batch", data=body, headers=headers, timeout=5)
    assert response.status_code == 202
    assert langsmith_receiver.runs[ROOT]["inputs"] == {"a": 1}


def test_format_tree_outlines_runs(langsmith_receiver):
    post(langsmith_receiver, [root_run(end_time=ids.iso_time(T0 + 2_500)), child_run(error="boom\nmore")])
    assert langsmith_receiver.format_tree() == "root [chain] 2.5 ms ok\n  child [tool] running error: boom"
