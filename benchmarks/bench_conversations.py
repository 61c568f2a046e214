"""Converting the conversations of agent runs: each model call whole, against remembering them.

    make bench        # or: python benchmarks/bench_conversations.py [--runs N] [--rounds R]

An agent's model calls each record the whole conversation so far (``gen_ai.input.messages``): a
run of n steps has n texts, each the previous one plus a tool call and its result. Converting
every text whole costs O(n^2) messages per run; ``Conversations`` converts only what each call
added. Both convert the same texts, taking turns within each round; reported: median microseconds
per model call, and the ratio, by run length.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time

from otel_langsmith._convert import messages
from otel_langsmith._convert.conversations import Conversations

WORDS = "forecast city rain wind report hotel price flight delay museum ticket".split()


def agent_texts(runs: int, steps: int, seed: int = 7) -> list[str]:
    """``gen_ai.input.messages`` of every model call of ``runs`` agent runs, interleaved as
    concurrent runs would be."""
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    conversations = [[{"role": "user", "parts": [{"type": "text", "content": text(40)}]}] for _ in range(runs)]
    texts = []
    for step in range(steps):
        for run, conversation in enumerate(conversations):
            texts.append(json.dumps(conversation))
            call = {"type": "tool_call", "id": f"call_{run}_{step}", "name": "search", "arguments": {"q": text(3)}}
            result = {"type": "tool_call_response", "id": call["id"], "response": {"result": text(35)}}
            conversation += [{"role": "assistant", "parts": [call]}, {"role": "tool", "parts": [result]}]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="concurrent agent runs")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    print("| agent steps | longest text | each call whole | remembered | whole / remembered |")
    print("|---|---|---|---|---|")
    for steps in (5, 10, 20, 40):
        texts = agent_texts(args.runs, steps)
        samples: dict[str, list[float]] = {"whole": [], "remembered": []}
        for _ in range(args.rounds):
            gc.collect()
            started = time.perf_counter()
            for text in texts:
                messages.from_genai(text)
            samples["whole"].append(time.perf_counter() - started)
            conversations = Conversations()
            gc.collect()
            started = time.perf_counter()
            for text in texts:
                conversations.messages(text)
            samples["remembered"].append(time.perf_counter() - started)
        whole, remembered = (statistics.median(samples[name]) / len(texts) * 1e6 for name in samples)
        longest = max(map(len, texts))
        print(f"| {steps} | {longest:,} chars | {whole:.1f} us | {remembered:.1f} us | {whole / remembered:.2f}x |")


if __name__ == "__main__":
    main()
