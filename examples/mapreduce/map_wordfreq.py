"""Map step of the word frequency: count how often each word occurs in each file given and post
one result per file to a queue, for ``reduce.py`` to merge.

    python map_wordfreq.py pieces/part-* [--server URL] [--queue wordfreq]

Words are compared in lower case, without the punctuation around them ("Free," and "free"
are one word). Each result is a JSON message
``{"file": "pieces/part-00", "words": 612, "freq": {"the": 40, "of": 22, ...}}``; ``words``
counts as ``wc -w`` does, so the reducer's total can be checked against it.
"""

from __future__ import annotations

import argparse
import json
import os
import string
from collections import Counter
from pathlib import Path

from restmq.client import DEFAULT_SERVER, Client


def frequencies(text: str) -> Counter[str]:
    words = (token.strip(string.punctuation).lower() for token in text.split())
    return Counter(word for word in words if word)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="+", type=Path, help="the pieces of text to count")
    parser.add_argument("--server", default=os.environ.get("RESTMQ_SERVER", DEFAULT_SERVER))
    parser.add_argument("--queue", default="wordfreq", help="where results go [wordfreq]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with Client(args.server) as client:
        for path in args.files:
            data = path.read_bytes()
            freq = frequencies(data.decode("utf-8", errors="replace"))
            result = {"file": str(path), "words": len(data.split()), "freq": freq}
            key = client.add(args.queue, json.dumps(result))
            print(f"{path}: {len(freq)} distinct words -> {key}")


if __name__ == "__main__":
    main()
