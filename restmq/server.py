"""Lifecycle: start and stop everything in order.

Order on start: the embedded Valkey (when no Redis URL is given) and a wait until it answers,
then the HTTP workers. On SIGTERM/SIGINT: the workers drain and exit, then Valkey is shut down
cleanly (it fsyncs its append-only file). With ``--workers 1`` the worker runs in this process;
with N > 1, N spawned processes share the port through SO_REUSEPORT and a worker that dies is
started again; their metrics go to a private prometheus-client multiprocess directory, so a
scrape on any of them reports all of them. ``restmq syslogd`` runs only the syslog receiver,
in this process, with the same embedded Valkey handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from restmq.adapters.syslog import serve_syslogd
from restmq.config import Settings
from restmq.http.access import AclFile
from restmq.worker import serve_worker, worker_main

if TYPE_CHECKING:
    from restmq.embedded import EmbeddedValkey

log = logging.getLogger("restmq.server")
RESTART_BACKOFF = 1.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


async def _start_embedded(settings: Settings) -> EmbeddedValkey | None:
    if not settings.embedded:
        return None
    from restmq.embedded import EmbeddedValkey  # only when no Redis is given

    valkey = EmbeddedValkey(settings.data_dir.resolve(), logger=logging.getLogger("restmq.valkey"))
    await valkey.start()
    log.info("embedded valkey running on %s", valkey.url)
    return valkey


@contextlib.asynccontextmanager
async def _storage_url(settings: Settings) -> AsyncIterator[str]:
    """The Redis URL to use; the embedded Valkey (if any) runs supervised around the block."""
    valkey = await _start_embedded(settings)
    supervisor = asyncio.create_task(valkey.supervise()) if valkey else None
    try:
        yield settings.storage_url(valkey.url if valkey else None)
    finally:
        if supervisor:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if valkey:
            await valkey.stop()


async def serve(settings: Settings) -> None:
    """Run the broker until a stop signal; the whole life of ``restmq serve``."""
    if settings.acl is not None:
        AclFile(settings.acl)  # a broken ACL file stops the start here, not in each worker
    async with _storage_url(settings) as url:
        if settings.workers == 1:
            await serve_worker(settings, url)
        else:
            await _run_workers(settings, url)
    log.info("broker stopped")


async def syslogd(settings: Settings) -> None:
    """Run the syslog receiver alone until a stop signal; the whole life of ``restmq syslogd``."""
    async with _storage_url(settings) as url:
        await serve_syslogd(settings, url, _stop_on_signal())
    log.info("syslog receiver stopped")


def _stop_on_signal() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


class _Workers:
    """N worker processes, restarted when one dies unexpectedly."""

    def __init__(self, settings: Settings, url: str, metrics_dir: str) -> None:
        self._settings = settings
        self._url = url
        self._metrics_dir = metrics_dir
        self._context = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._all_gone = asyncio.Event()
        self.stopping = False

    def start_all(self) -> None:
        for _ in range(self._settings.workers):
            self._spawn()

    def _spawn(self) -> None:
        proc = self._context.Process(
            target=worker_main,
            args=(self._settings, self._url, True, self._metrics_dir),
            daemon=False,
        )
        proc.start()
        self._procs.append(proc)
        asyncio.get_running_loop().add_reader(proc.sentinel, self._on_exit, proc)

    def _on_exit(self, proc: BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(proc.sentinel)
        proc.join()
        self._procs.remove(proc)
        if self.stopping and not self._procs:
            self._all_gone.set()
        if not self.stopping:
            log.error("worker %s exited with %s; starting another", proc.pid, proc.exitcode)
            loop.call_later(RESTART_BACKOFF, self._respawn)

    def _respawn(self) -> None:
        if not self.stopping:
            self._spawn()

    async def stop_all(self, timeout: float) -> None:
        self.stopping = True
        if not self._procs:
            return
        for proc in self._procs:
            proc.terminate()  # SIGTERM: the worker drains
        try:
            await asyncio.wait_for(self._all_gone.wait(), timeout + 5)
        except TimeoutError:
            for proc in list(self._procs):
                log.error("worker %s did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.join()


@contextlib.contextmanager
def _metrics_dir() -> Iterator[str]:
    """A fresh directory for the workers' prometheus-client files, removed afterwards.

    prometheus-client chooses its multiprocess mode from this variable when it is first
    imported, so it must be in the environment that the spawned workers inherit. A worker
    that dies leaves its files: its counts stay in the sums (counters never go backwards).
    No live gauge is used, so no ``mark_process_dead`` bookkeeping is needed.
    """
    path = tempfile.mkdtemp(prefix="restmq-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


async def _run_workers(settings: Settings, url: str) -> None:
    stop = _stop_on_signal()
    with _metrics_dir() as metrics_dir:
        workers = _Workers(settings, url, metrics_dir)
        workers.start_all()
        log.info("%d workers on http://%s:%d", settings.workers, settings.listen, settings.port)
        await stop.wait()
        await workers.stop_all(settings.shutdown_timeout)
