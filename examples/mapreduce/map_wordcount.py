"""Map step of the word count: count the words of each file given and post one result per file
to a queue, for ``reduce.py`` to add up.

    python map_wordcount.py pieces/part-* [--server URL] [--queue wordcount]

A word is a run of bytes between ASCII whitespace, as ``wc -w`` counts them. Each result is a
JSON message ``{"file": "pieces/part-00", "words": 612}``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from restmq.client import DEFAULT_SERVER, Client


def count_words(data: bytes) -> int:
    return len(data.split())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="+", type=Path, help="the pieces of text to count")
    parser.add_argument("--server", default=os.environ.get("RESTMQ_SERVER", DEFAULT_SERVER))
    parser.add_argument("--queue", default="wordcount", help="where results go [wordcount]")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with Client(args.server) as client:
        for path in args.files:
            words = count_words(path.read_bytes())
            key = client.add(args.queue, json.dumps({"file": str(path), "words": words}))
            print(f"{path}: {words} words -> {key}")


if __name__ == "__main__":
    main()
