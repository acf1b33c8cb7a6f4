"""One daemon process: the HTTP server, its storage connection and its background tasks.

``serve_worker`` runs until SIGTERM/SIGINT, then drains: it stops accepting, lets in-flight
requests finish (up to ``shutdown_timeout``), closes streams and the Redis pool, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from aiohttp import web

from restmq.adapters.syslog import SyslogListener, start_syslog
from restmq.config import Settings, describe_url
from restmq.delivery.hub import Hub
from restmq.engine.connection import Storage, open_storage, prepare
from restmq.engine.notify import Subscriber
from restmq.engine.streams import DeliveryTuning, StreamStore
from restmq.errors import OutcomeUnknown, StorageUnavailable
from restmq.http.app import build_app
from restmq.http.connection import Runner
from restmq.http.context import Context
from restmq.logs import setup_logging

log = logging.getLogger("restmq.worker")
CANCEL_GRACE = 1.0  # seconds of shutdown_timeout kept for cancelling requests that overran


async def _sweeper(storage: Storage, interval: float, idle_time: float) -> None:
    """Expire TTLs, promote delayed messages and requeue expired leases when they are due,
    and let queues unused for ``idle_time`` seconds leave the listings."""
    idle_ms = int(idle_time * 1000)
    while True:
        try:
            while await storage.store.sweep_due(int(time.time() * 1000), idle_ms=idle_ms):
                pass
        except (StorageUnavailable, OutcomeUnknown):
            pass  # the storage's state changes are logged by the pipeliner
        except Exception:  # keep sweeping; the next round may succeed
            log.exception("sweep failed")
        await asyncio.sleep(interval)


async def _prepare(storage: Storage) -> None:
    try:
        await prepare(storage)
    except StorageUnavailable as exc:
        log.warning("storage not reachable yet (%s); answering 503 until it is", exc.message)


def _hub(settings: Settings, storage: Storage) -> Hub:
    tuning = DeliveryTuning(
        credits=settings.stream_credits,
        lease_ms=int(settings.stream_lease * 1000),
        presence_ms=int(settings.presence_timeout * 1000),
        history_size=settings.history_size,
        history_age_ms=int(settings.history_age * 1000),
    )
    streams = StreamStore(storage.store, tuning)
    return Hub(
        streams,
        storage.store.keys,
        lambda on_message, on_reconnect: Subscriber(storage.pubsub, on_message, on_reconnect),
    )


def _runner(settings: Settings, context: Context) -> Runner:
    """The HTTP runner: request-head and keep-alive deadlines on every connection, and a
    graceful budget on shutdown that leaves ``CANCEL_GRACE`` of ``shutdown_timeout`` to cancel
    what is still running (see ``_drain``)."""
    return Runner(
        build_app(context),
        access_log=log if settings.access_log else None,
        shutdown_timeout=settings.shutdown_timeout - _cancel_grace(settings.shutdown_timeout),
        handle_signals=False,
        handler_cancellation=True,  # a streaming consumer that disconnects is forgotten at once
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
    )


def _cancel_grace(shutdown_timeout: float) -> float:
    return min(CANCEL_GRACE, shutdown_timeout / 4)


async def _drain(site: web.TCPSite, runner: Runner, hub: Hub, deadline: float) -> None:
    """Stop accepting; answer every long poll (empty) and end every stream at once; let the
    other requests in flight finish until ``deadline`` (loop time), cancelling them a little
    before it; then close whatever connection is left."""
    await site.stop()
    hub.close()
    server = runner.server
    try:
        async with asyncio.timeout_at(deadline):
            await runner.cleanup()
    except TimeoutError:
        log.warning("stopping: requests still running at the shutdown deadline were cut")
        for connection in server.connections if server else []:
            connection.force_close()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_worker(
    settings: Settings, url: str, reuse_port: bool = False, metrics_dir: str | None = None
) -> None:
    """Serve HTTP on ``settings.listen:settings.port`` until a stop signal arrives.

    ``metrics_dir`` is the server's prometheus-client multiprocess directory (``--workers N``).
    """
    stop = _stop_event()
    storage = open_storage(
        url, settings.prefix, settings.redis_pool, settings.request_timeout,
        settings.idempotency_window,
    )
    await _prepare(storage)
    hub = _hub(settings, storage)
    await hub.start()
    context = Context(settings, storage.store, describe_url(url), hub, metrics_dir)
    runner = _runner(settings, context)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen, settings.port, reuse_port=reuse_port)
    await site.start()
    syslog: SyslogListener | None = None
    if settings.syslogd:  # with several workers each one listens too, through SO_REUSEPORT
        syslog = await start_syslog(settings, storage.store, reuse_port=reuse_port)
    sweeper = asyncio.create_task(
        _sweeper(storage, settings.sweep_interval, settings.queue_idle_time)
    )
    log.info("listening on http://%s:%d (%s)", settings.listen, settings.port, context.storage)
    await stop.wait()
    log.info("stopping: draining requests")
    deadline = asyncio.get_running_loop().time() + settings.shutdown_timeout
    await _drain(site, runner, hub, deadline)
    if syslog:
        await syslog.close(max(0.0, deadline - asyncio.get_running_loop().time()))
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    await hub.stop()
    await storage.close()
    log.info("stopped")


def worker_main(
    settings: Settings, url: str, reuse_port: bool, metrics_dir: str | None = None
) -> None:
    """Entry point of a worker process (spawned by the server for ``--workers N``)."""
    import uvloop

    setup_logging(settings.log_level)
    uvloop.run(serve_worker(settings, url, reuse_port, metrics_dir))
