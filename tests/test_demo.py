"""`make demo`'s program, run as a user would run it: no key set, a local receiver, a printed tree."""

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parent.parent / "examples" / "agent_demo.py"


def test_the_demo_prints_the_run_tree_from_the_local_receiver():
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "OTEL_"))}
    completed = subprocess.run(
        [sys.executable, str(DEMO)], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "6 runs received, 0 requests rejected." in lines
    tree = lines[lines.index("6 runs received, 0 requests rejected.") + 2 :]
    shape = [
        (len(line) - len(line.lstrip()), line.split(" [")[0].strip(), line.split("[")[1].split("]")[0]) for line in tree
    ]
    assert shape == [
        (0, "weather-agent", "chain"),
        (2, "chat gpt-4o-mini", "llm"),
        (2, "get_weather", "tool"),
        (4, "GET", "chain"),
        (2, "calculator", "tool"),
        (2, "chat gpt-4o-mini", "llm"),
    ] or shape == [
        (0, "weather-agent", "chain"),
        (2, "chat gpt-4o-mini", "llm"),
        (2, "calculator", "tool"),
        (2, "get_weather", "tool"),
        (4, "GET", "chain"),
        (2, "chat gpt-4o-mini", "llm"),
    ]
    calculator = next(line for line in tree if "calculator" in line)
    assert "error: ZeroDivisionError" in calculator
    assert all(line.endswith(" ok") for line in tree if "calculator" not in line)
