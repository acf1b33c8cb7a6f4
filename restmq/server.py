"""Lifecycle: start and stop everything in order.

Order on start: the embedded Valkey (when no Redis URL is given) and a wait until it answers,
then the HTTP workers. On SIGTERM/SIGINT: the workers drain and exit, then Valkey is shut down
cleanly (it fsyncs its append-only file). With ``--workers 1`` the worker runs in this process;
with N > 1, N spawned processes share the port through SO_REUSEPORT and a worker that dies is
started again; their metrics go to a private prometheus-client multiprocess directory, so a
scrape on any of them reports all of them. ``restmq syslogd`` runs only the syslog receiver,
in this process, with the same embedded Valkey handling.

Before anything starts, the addresses to listen on are tried (a taken port is one clear error,
not a traceback, and with ``--workers N`` not a loop of dying workers) and the soft limit on
open files is raised to the hard one (every client connection is a file descriptor). On the
way out Valkey is stopped before its supervisor is awaited: ``stop`` ends the supervisor by
itself, so shutting down never depends on a cancellation, which Python 3.11 can lose
(see restmq.embedded).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

from restmq.adapters.syslog import serve_syslogd
from restmq.config import Settings
from restmq.errors import ConfigError
from restmq.http.access import AclFile
from restmq.worker import serve_worker, worker_main

if TYPE_CHECKING:
    from restmq.embedded import EmbeddedValkey

log = logging.getLogger("restmq.server")
RESTART_BACKOFF = 1.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# What to do about a listening address that cannot be bound, by errno.
_BIND_HINTS = {
    errno.EADDRINUSE: "address already in use (is another RestMQ running?); stop it or "
    "choose another {flag}",
    errno.EACCES: "permission denied (ports below 1024 need privileges); choose another {flag}",
    errno.EADDRNOTAVAIL: "no such address on this machine; check --listen",
}


def _raise_open_files_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit: each connection holds a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        log.debug("open files limit: %d", soft)
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit above fs.nr_open
        log.debug("open files limit stays %d (raising it to %d failed: %s)", soft, hard, exc)
        return
    log.debug("open files limit raised from %d to %d", soft, hard)


def _check_bindable(host: str, port: int, kind: socket.SocketKind, flag: str) -> None:
    """Raise ConfigError, in one line, when ``host:port`` cannot be bound (taken, forbidden)."""
    where = f"{host}:{port}" + (" (udp)" if kind == socket.SOCK_DGRAM else "")
    try:
        infos = socket.getaddrinfo(host or None, port, type=kind, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {where}: {exc.strerror}; check --listen") from None
    for family, type_, proto, _, address in infos:
        with socket.socket(family, type_, proto) as sock:
            if kind == socket.SOCK_STREAM:  # as asyncio's create_server does
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                hint = _BIND_HINTS.get(exc.errno or 0, "{strerror}")
                reason = hint.format(flag=flag, strerror=exc.strerror or exc)
                raise ConfigError(f"cannot listen on {where}: {reason}") from None


def _check_addresses(settings: Settings, http: bool) -> None:
    """Try every address the daemon will listen on before starting anything."""
    if http:
        _check_bindable(settings.listen, settings.port, socket.SOCK_STREAM, "--port")
    if settings.syslogd or not http:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            _check_bindable(settings.listen, settings.syslog_port, kind, "--syslog-port")


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
        if valkey:
            await valkey.stop()  # this also ends the supervisor: no cancellation to lose
        if supervisor:
            await supervisor


async def serve(settings: Settings) -> None:
    """Run the broker until a stop signal; the whole life of ``restmq serve``."""
    if settings.acl is not None:
        AclFile(settings.acl)  # a broken ACL file stops the start here, not in each worker
    _check_addresses(settings, http=True)
    _raise_open_files_limit()
    async with _storage_url(settings) as url:
        if settings.workers == 1:
            await serve_worker(settings, url)
        else:
            await _run_workers(settings, url)
    log.info("broker stopped")


async def syslogd(settings: Settings) -> None:
    """Run the syslog receiver alone until a stop signal; the whole life of ``restmq syslogd``."""
    _check_addresses(settings, http=False)
    _raise_open_files_limit()
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
            async with asyncio.timeout(timeout + 5):  # not wait_for: see the module docstring
                await self._all_gone.wait()
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
