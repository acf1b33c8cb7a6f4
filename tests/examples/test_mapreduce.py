"""examples/mapreduce: a real text split in pieces by ``split``, counted by map processes,
combined by a streaming reducer process; the total must be what ``wc -w`` says."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.examples.conftest import ONE_BACKEND, finish, start_example
from tests.helpers.broker import Broker

pytestmark = ONE_BACKEND
PIECES = 8
TEXTS = [  # shipped by Debian's base-files, else by CPython itself
    Path("/usr/share/common-licenses/GPL-3"),
    Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    / "LICENSE.txt",
]


@pytest.fixture
def text() -> Path:
    for path in TEXTS:
        if path.is_file():
            return path
    pytest.skip("no license text found to count")


@pytest.fixture
def pieces(text: Path, tmp_path: Path) -> list[Path]:
    """The text split in PIECES pieces at line boundaries, by coreutils' split."""
    subprocess.run(["split", "-n", f"l/{PIECES}", "-d", str(text), str(tmp_path / "part-")],
                   check=True)
    found = sorted(tmp_path.glob("part-*"))
    assert len(found) == PIECES
    return found


def wc_words(path: Path) -> int:
    done = subprocess.run(["wc", "-w", str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0])


def run_map_reduce(
    broker: Broker, pieces: list[Path], mapper: str, queue: str, via: str
) -> dict[str, Any]:
    """The reducer and two mappers (half the pieces each) at once; the reducer's summary."""
    server = ("--server", broker.url)
    reducer = start_example("mapreduce/reduce.py", *server, "--queue", queue, "--via", via,
                            "--pieces", str(len(pieces)), "--json")
    half = len(pieces) // 2
    mappers = [start_example(f"mapreduce/{mapper}", *server, "--queue", queue, *files)
               for files in (pieces[:half], pieces[half:])]
    for proc in mappers:
        finish(proc)
    summary: dict[str, Any] = json.loads(finish(reducer))
    return summary


def test_the_word_counts_of_the_pieces_add_up_to_wc_w_of_the_text(
    broker: Broker, text: Path, pieces: list[Path]
) -> None:
    summary = run_map_reduce(broker, pieces, "map_wordcount.py", "wordcount", "sse")
    assert summary["pieces"] == PIECES
    assert summary["words"] == wc_words(text)
    assert sum(wc_words(piece) for piece in pieces) == wc_words(text)  # split cut no word


def test_the_merged_word_frequencies_are_those_of_the_whole_text(
    broker: Broker, text: Path, pieces: list[Path]
) -> None:
    summary = run_map_reduce(broker, pieces, "map_wordfreq.py", "wordfreq", "comet")
    words = (token.strip(string.punctuation).lower() for token in text.read_text().split())
    whole = Counter(word for word in words if word)
    assert summary["words"] == wc_words(text)
    assert summary["freq"] == dict(whole)
    assert summary["top"][0] == list(whole.most_common(1)[0])
