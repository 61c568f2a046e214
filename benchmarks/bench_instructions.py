"""bench_client's cost comparison counted in CPU instructions, which do not drift with the machine.

    make bench        # or: python benchmarks/bench_instructions.py [--traces N]

Timings on a shared virtual machine swing by up to 2x from one minute to the next, and the bridge
(many small allocations) and the OTLP encoder (protobuf) do not swing alike, so their time ratio
moves too. Instructions retired, counted by valgrind's callgrind, are the same on every run for the
same interpreter, inputs and hash seed. Each contender runs under callgrind twice, doing its work
once and then twice; the difference is one pass, without the interpreter start-up, the imports
and the recording of the spans. Needs valgrind; without it this says so and does nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))

import bench_client
from spanmix import SPANS_PER_TRACE, record


def one_pass(contender: str, traces: int, passes: int) -> None:
    """What runs under callgrind: ``passes`` passes of one contender over the span mix."""
    spans = record(traces)
    work = bench_client.contenders(spans, bench_client.bridge_runs(spans))[contender]
    for _ in range(passes):
        work()


def instructions(contender: str, traces: int, passes: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        contender,
        "--traces",
        str(traces),
        "--passes",
        str(passes),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # dict and set layouts, hence counts, repeat
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind reported no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=66, help=f"agent traces ({SPANS_PER_TRACE} spans each)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        one_pass(args.run, args.traces, args.passes)
        return
    if shutil.which("valgrind") is None:
        print("valgrind not found: instruction counts not measured (apt-get install valgrind)")
        return

    spans = args.traces * SPANS_PER_TRACE
    names = bench_client.contenders([], [])  # only their names: nothing runs here
    per_span = {
        name: (instructions(name, args.traces, 2) - instructions(name, args.traces, 1)) / spans for name in names
    }
    print(f"{spans} spans ({args.traces} agent traces), callgrind, Python {sys.version.split()[0]}")
    print()
    bench_client.print_costs(per_span, "instructions per span", lambda count: f"{count / 1000:,.1f}k")
    bench_client.print_budgets(per_span, lambda count: f"{count / 1000:,.1f}k instructions")


if __name__ == "__main__":
    main()
