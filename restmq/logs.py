"""Logging: one line per event, to stderr."""

from __future__ import annotations

import logging
import os

from restmq.errors import ConfigError

LEVELS = ("debug", "info", "warning", "error", "critical")


def setup_logging(level: str) -> None:
    """Log at `level` (one of LEVELS, any case) to stderr; ConfigError for another name."""
    if level.lower() not in LEVELS:
        raise ConfigError(f"invalid log level {level!r}: choose one of {', '.join(LEVELS)}")
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
        force=True,
    )
