"""What writing a batch to the spool costs as the spool fills during an outage.

    make bench        # or: python benchmarks/bench_spool.py [--files N ...] [--writes W]

Every batch LangSmith does not take during an outage is written to ``spool_dir``; a long outage
leaves thousands of files there. The spool must keep ``spool_max_bytes``, which means knowing what
the directory holds. Reported: CPU per write (``time.process_time``, fsync included) with the
spool already holding N files of 100 runs each, and the same with the directory counted on every
write (what the spool did before it kept its count for a second).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from otel_langsmith import _spool as spool_module
from otel_langsmith._spool import Spool
from otel_langsmith._wire import encode_run

# The spool's own interval, as shipped.
KEPT = spool_module._RECOUNT


def batch() -> list:
    return [
        encode_run({"id": f"00000000-0000-0000-0000-{index:012d}", "trace_id": "t", "inputs": {"x": "y" * 2000}})
        for index in range(100)
    ]


def per_write_ms(files: int, writes: int, recount: float) -> float:
    runs = batch()
    with tempfile.TemporaryDirectory() as directory:
        spool_module._RECOUNT = KEPT
        filler = Spool(directory, max_bytes=1 << 40)
        for _ in range(files):
            filler.write(runs)
        spool_module._RECOUNT = recount
        spool = Spool(directory, max_bytes=1 << 40)
        started = time.process_time()
        for _ in range(writes):
            spool.write(runs)
        elapsed = time.process_time() - started
    spool_module._RECOUNT = KEPT
    return elapsed / writes * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[100, 1000, 4000])
    parser.add_argument("--writes", type=int, default=50)
    args = parser.parse_args()
    print("CPU per spool write (ms), 100-run batches, by the files already spooled")
    print("| files | counted at most once a second | counted on every write | ratio |")
    print("|---|---|---|---|")
    for files in args.files:
        counted = statistics.median(per_write_ms(files, args.writes, KEPT) for _ in range(3))
        every = statistics.median(per_write_ms(files, args.writes, 0.0) for _ in range(3))
        print(f"| {files:,} | {counted:.2f} | {every:.2f} | {counted / every:.2f}x |")


if __name__ == "__main__":
    main()
