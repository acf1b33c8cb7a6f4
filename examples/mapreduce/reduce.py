"""Reduce step: stream the per-file results of the map scripts and combine them as they arrive.

    python reduce.py [--queue wordcount] [--via sse|comet|ws] [--pieces N] [--top 10] [--json]

It is a streaming consumer of the queue: results posted before it started are delivered first
(they wait in the queue), the others within milliseconds of their POST. It adds up the word
counts and, for results of ``map_wordfreq.py``, merges the frequencies. It runs until it has
``--pieces`` results (or until Ctrl-C), then prints the totals; ``--json`` prints them as one
JSON object. A result seen twice (a replay after a reconnection) is counted once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from restmq.client import DEFAULT_SERVER, Client, Message


@dataclass
class Totals:
    pieces: int = 0
    words: int = 0
    freq: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)

    def add(self, message: Message) -> dict[str, Any] | None:
        """Fold one result in; None when this message was already counted."""
        if message.key in self.seen:
            return None
        self.seen.add(message.key)
        result: dict[str, Any] = json.loads(message.value)
        self.pieces += 1
        self.words += int(result["words"])
        self.freq.update(result.get("freq", {}))
        return result

    def summary(self, top: int) -> dict[str, Any]:
        return {"pieces": self.pieces, "words": self.words,
                "top": self.freq.most_common(top), "freq": dict(self.freq)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", default=os.environ.get("RESTMQ_SERVER", DEFAULT_SERVER))
    parser.add_argument("--queue", default="wordcount", help="results to read [wordcount]")
    parser.add_argument("--via", choices=["sse", "comet", "ws"], default="sse")
    parser.add_argument("--pieces", type=int, default=0, help="stop after this many results")
    parser.add_argument("--top", type=int, default=10, help="most frequent words to show")
    parser.add_argument("--json", action="store_true", help="print the totals as JSON")
    return parser.parse_args(argv)


def reduce(client: Client, args: argparse.Namespace, totals: Totals) -> None:
    with contextlib.closing(client.stream(args.queue, via=args.via)) as messages:
        for message in messages:
            result = totals.add(message)
            if result is not None and not args.json:
                print(f"{result['file']}: {result['words']} words "
                      f"(total {totals.words} in {totals.pieces} pieces)", flush=True)
            if totals.pieces == args.pieces:
                return


def report(totals: Totals, args: argparse.Namespace) -> None:
    summary = totals.summary(args.top)
    if args.json:
        print(json.dumps(summary))
        return
    print(f"total: {summary['words']} words in {summary['pieces']} pieces")
    for word, count in summary["top"]:
        print(f"{count:8d}  {word}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    totals = Totals()
    with Client(args.server) as client, contextlib.suppress(KeyboardInterrupt):
        reduce(client, args, totals)
    report(totals, args)


if __name__ == "__main__":
    main()
