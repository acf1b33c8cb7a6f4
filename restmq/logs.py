"""Logging: one line per event, to stderr."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
        force=True,
    )
