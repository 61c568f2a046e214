"""Multipart encoding: writing the layout directly (otel_langsmith._wire) against
requests-toolbelt's MultipartEncoder, on the same runs, in one process.

    make bench        # or: python benchmarks/bench_multipart.py [--runs N] [--rounds R]

Both produce the same parts (name, Content-Type, Content-Length, payload); the receiver's parser
checks that before anything is timed. Reported: median seconds per batch and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from requests_toolbelt import MultipartEncoder

from otel_langsmith import _ids as ids
from otel_langsmith import _wire as wire
from otel_langsmith.testing import operations_from_multipart, parse_multipart


def realistic_runs(count: int) -> list[dict]:
    runs = []
    trace_id = str(uuid.uuid4())
    start = 1_763_000_000_000_000
    for index in range(count):
        run_id = trace_id if index == 0 else ids.span_run_id(index + 1)
        messages = [{"role": "system", "content": "You are a helpful assistant. " * 5}] + [
            {"role": "user" if i % 2 else "assistant", "content": f"message {i} " * 20} for i in range(6)
        ]
        run = {
            "name": f"chat gpt-4o-mini {index}",
            "run_type": "llm",
            "id": run_id,
            "trace_id": trace_id,
            "dotted_order": ids.segment(start, trace_id)
            + ("" if index == 0 else "." + ids.segment(start + index, run_id)),
            "start_time": ids.iso_time(start + index),
            "end_time": ids.iso_time(start + index + 5_000),
            "session_name": "bench",
            "inputs": {"messages": messages},
            "outputs": {"choices": [{"message": {"role": "assistant", "content": "answer " * 40}}]},
            "events": [{"name": "new_token", "time": ids.iso_time(start + index + 100)}],
            "extra": {
                "metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini", "OTEL_SPAN_ID": f"{index:016x}"}
            },
        }
        if index:
            run["parent_run_id"] = trace_id
        runs.append(run)
    return runs


def encode_direct(runs: list[dict], boundary: str) -> bytes:
    return wire.multipart_body([wire.encode_run(run) for run in runs], boundary)


def encode_toolbelt(runs: list[dict], boundary: str) -> bytes:
    fields = []
    for run in runs:
        main = {k: v for k, v in run.items() if k not in wire.OUT_OF_BAND}
        payloads = [(f"post.{run['id']}", wire.dumps(main))]
        payloads += [(f"post.{run['id']}.{f}", wire.dumps(run[f])) for f in wire.OUT_OF_BAND if run.get(f) is not None]
        for name, data in payloads:
            fields.append((name, (None, data, "application/json", {"Content-Length": str(len(data))})))
    return MultipartEncoder(fields=fields, boundary=boundary).to_string()


def median_seconds(function, runs, boundary, rounds) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        function(runs, boundary)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="runs per batch (LangSmith's size_limit)")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    runs = realistic_runs(args.runs)
    boundary = wire.new_boundary()

    direct_ops = operations_from_multipart(parse_multipart(encode_direct(runs, boundary), wire.content_type(boundary)))
    toolbelt_ops = operations_from_multipart(
        parse_multipart(encode_toolbelt(runs, boundary), wire.content_type(boundary))
    )
    assert json.dumps(direct_ops, sort_keys=True) == json.dumps(toolbelt_ops, sort_keys=True)

    direct = median_seconds(encode_direct, runs, boundary, args.rounds)
    toolbelt = median_seconds(encode_toolbelt, runs, boundary, args.rounds)
    size = len(encode_direct(runs, boundary))
    print(f"batch of {args.runs} runs, {size:,} bytes, median of {args.rounds} rounds")
    print(f"  direct layout (otel_langsmith._wire): {direct * 1e3:8.3f} ms")
    print(f"  requests-toolbelt MultipartEncoder:  {toolbelt * 1e3:8.3f} ms")
    print(f"  toolbelt / direct: {toolbelt / direct:.1f}x")


if __name__ == "__main__":
    main()
