"""`make demo`'s program, run as a user would run it: no key set, a local receiver, a printed tree."""

import sys
from pathlib import Path

from helpers import run_child

DEMO = Path(__file__).parents[2] / "examples" / "agent_demo.py"


def test_the_demo_prints_the_run_tree_from_the_local_receiver():
    completed = run_child([sys.executable, str(DEMO)])
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "6 runs received, 0 requests rejected." in lines
    tree = lines[lines.index("6 runs received, 0 requests rejected.") + 2 :]
    outline = [
        (len(line) - len(line.lstrip()), line.strip().split(" [")[0], line.split("[")[1].split("]")[0]) for line in tree
    ]
    weather = [(2, "get_weather", "tool"), (4, "GET", "chain")]
    calculator = [(2, "calculator", "tool")]
    assert len(outline) == 6
    assert outline[0] == (0, "weather-agent", "chain")
    assert outline[1] == outline[5] == (2, "chat gpt-4o-mini", "llm")
    # The two tools run on two threads: siblings follow the order in which they started.
    assert outline[2:5] in (weather + calculator, calculator + weather)
    assert "error: ZeroDivisionError" in next(line for line in tree if "calculator" in line)
    assert all(line.endswith(" ok") for line in tree if "calculator" not in line)
