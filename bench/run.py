"""Benchmark the broker's HTTP endpoints with wrk, one server per worker count.

    python bench/run.py --workers 1 2 --duration 10

For each worker count: start ``restmq serve`` on a free port (the machine's Redis with a unique
prefix, or ``--embedded``), measure ``GET /livez`` (the HTTP stack alone), ``POST /q/<queue>``,
the JSON protocol's ``add``, then fill the queue and measure ``GET /q/<queue>``; stop the server
and delete its keys. Then redis-benchmark gives the storage's own rate as context. The report
is printed and written to bench/results/latest.md (raw figures in latest.json). See README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from statistics import median

import cpu
import machine
import report
import storage
from broker import REPO, Broker
from loadgen import Load, WrkResult, ensure_wrk, run_wrk, wrk_version

RESULTS = Path(__file__).resolve().parent / "results"
QUEUE = "bench"
PREFILL_MARGIN = 1.1  # messages to have waiting, relative to what /livez's rate could take
PREFILL_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class Endpoint:
    label: str
    path: str
    script: str | None  # bench/<script>; None for a plain GET


LIVEZ = Endpoint("GET /livez", "/livez", None)
POST_QUEUE = Endpoint("POST /q/<queue>", f"/q/{QUEUE}", "post_form.lua")
JSON_ADD = Endpoint("POST /queue (JSON add)", "/queue", "json_add.lua")
GET_QUEUE = Endpoint("GET /q/<queue>", f"/q/{QUEUE}", None)
ENDPOINTS = (LIVEZ, POST_QUEUE, JSON_ADD, GET_QUEUE)


@dataclass
class Run:
    """Everything one invocation needs to know."""

    args: argparse.Namespace
    wrk: str

    @property
    def load(self) -> Load:
        return Load(self.args.threads, self.args.connections, self.args.duration)

    @property
    def warmup(self) -> Load:
        return Load(self.args.threads, self.args.connections, self.args.warmup)

    @property
    def env(self) -> dict[str, str]:
        return {"RESTMQ_BENCH_VALUE_SIZE": str(self.args.value_size), "RESTMQ_BENCH_QUEUE": QUEUE}


@dataclass(frozen=True, slots=True)
class Target:
    """A running broker and the Redis it uses."""

    broker: Broker
    storage_version: str
    storage_pid: int | None  # None when the Redis process is not visible in /proc


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured wrk run and the CPU seconds the broker and Redis spent during it."""

    wrk: WrkResult
    broker_cpu_s: float
    storage_cpu_s: float | None

    def per_request_us(self, seconds: float | None) -> float | None:
        if seconds is None or self.wrk.requests == 0:
            return None
        return seconds / self.wrk.requests * 1e6


def open_target(broker: Broker) -> Target:
    version, pid = storage.server_info(broker.storage_url)
    visible = pid is not None and Path(f"/proc/{pid}/stat").exists()
    return Target(broker, version, pid if visible else None)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each one")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat every endpoint; report the medians"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--value-size", type=int, default=100, help="message bytes")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--embedded", action="store_true", help="use the broker's own Valkey (temporary --data-dir)"
    )
    parser.add_argument(
        "--storage-requests",
        type=int,
        default=100_000,
        help="redis-benchmark -n (0 skips the storage baseline)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record a py-spy flame graph of every worker during each endpoint",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO,
        help="the checkout to benchmark (python -m restmq runs there) [this repo]",
    )
    parser.add_argument(
        "--label", help="what is benchmarked, for the report [the source's git commit]"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args(argv)
    if args.profile and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy: pip install py-spy")
    return args


def measure(run: Run, target: Target, endpoint: Endpoint) -> Sample:
    """A warm-up, then the measured wrk run (profiled with py-spy when asked)."""
    broker = target.broker
    url = broker.base + endpoint.path
    if run.args.warmup > 0:
        run_wrk(run.wrk, url, run.warmup, endpoint.script, run.env)
    spies = start_profiles(run, broker, endpoint) if run.args.profile else []
    pids, storage_pid = broker.all_pids(), target.storage_pid
    broker_before = cpu.total_cpu_seconds(pids)
    storage_before = cpu.cpu_seconds(storage_pid) if storage_pid else 0.0
    result = run_wrk(run.wrk, url, run.load, endpoint.script, run.env)
    broker_cpu = cpu.total_cpu_seconds(pids) - broker_before
    storage_cpu = cpu.cpu_seconds(storage_pid) - storage_before if storage_pid else None
    for spy in spies:
        spy.wait()
    sample = Sample(result, broker_cpu, storage_cpu)
    print(
        f"  {endpoint.label:<24} {result.requests_per_s:>9,.0f} req/s  p50 {result.p50_ms:.2f} ms"
        f"  p99 {result.p99_ms:.2f} ms  broker CPU {report.us(sample.per_request_us(broker_cpu))}"
        f" us/req  statuses {result.statuses}",
        flush=True,
    )
    return sample


def start_profiles(run: Run, broker: Broker, endpoint: Endpoint) -> list[subprocess.Popen[bytes]]:
    """One ``py-spy record`` per worker, for the length of the measured run."""
    slug = "".join(c if c.isalnum() else "-" for c in endpoint.label.lower()).strip("-")
    spies = []
    for pid in broker.worker_pids():
        out = RESULTS / f"profile-w{broker.workers}-{slug}-{pid}.svg"
        command = [
            "py-spy",
            "record",
            "--nonblocking",
            "--pid",
            str(pid),
            "-o",
            str(out),
            "--duration",
            str(run.args.duration),
        ]
        spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
    return spies


def prefill(run: Run, broker: Broker, livez_rate: float, post_rate: float) -> None:
    """Fill the queue (through the broker's own POST) so the GET run never finds it empty.

    GET cannot outrun /livez on the same stack, so /livez's rate over the warm-up and the run,
    with a margin, is enough messages.
    """
    need = math.ceil(livez_rate * (run.args.duration + run.args.warmup) * PREFILL_MARGIN)
    url = broker.base + POST_QUEUE.path
    for _ in range(PREFILL_ROUNDS):
        have = broker.queue_length(QUEUE)
        if have >= need:
            print(f"  queue holds {have:,} messages (need {need:,})", flush=True)
            return
        seconds = max(1, math.ceil((need - have) / post_rate * 1.5))
        print(f"  prefilling: {have:,} waiting, {need:,} needed: POST for {seconds}s", flush=True)
        load = Load(run.load.threads, run.load.connections, seconds)
        run_wrk(run.wrk, url, load, POST_QUEUE.script, run.env)
    print("  warning: the queue may run empty during the GET run", flush=True)


def one_round(run: Run, target: Target) -> dict[Endpoint, Sample]:
    """Every endpoint once; the queue is filled up before GET."""
    samples = {e: measure(run, target, e) for e in (LIVEZ, POST_QUEUE, JSON_ADD)}
    livez, post = samples[LIVEZ].wrk.requests_per_s, samples[POST_QUEUE].wrk.requests_per_s
    prefill(run, target.broker, livez, post)
    samples[GET_QUEUE] = measure(run, target, GET_QUEUE)
    return samples


def bench_target(run: Run, target: Target) -> list[report.Row]:
    """Every endpoint against one running broker, ``--rounds`` times, as report rows."""
    broker = target.broker
    print(f"{broker.workers} worker(s) on {broker.base} (pid {broker.pid})", flush=True)
    rounds = []
    for number in range(1, run.args.rounds + 1):
        if run.args.rounds > 1:
            print(f" round {number}/{run.args.rounds}", flush=True)
        rounds.append(one_round(run, target))
    rows = [_row(e, broker.workers, [r[e] for r in rounds]) for e in ENDPOINTS]
    return [relative_to(row, rows[0]) for row in rows]


def relative_to(row: report.Row, livez: report.Row) -> report.Row:
    """The row with its rate and its CPU cost compared with /livez's."""
    cost, base = row.broker_cpu_us, livez.broker_cpu_us
    return replace(
        row,
        vs_livez=row.requests_per_s / livez.requests_per_s,
        cpu_vs_livez=base / cost if base and cost else None,
    )


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median(known) if known else None


def _row(endpoint: Endpoint, workers: int, samples: list[Sample]) -> report.Row:
    """Medians over the rounds for the rates, latencies and costs; totals for the counts."""
    runs = [s.wrk for s in samples]
    rate = median(r.requests_per_s for r in runs)
    return report.Row(
        endpoint=endpoint.label,
        workers=workers,
        requests_per_s=rate,
        p50_ms=median(r.p50_ms for r in runs),
        p99_ms=median(r.p99_ms for r in runs),
        vs_livez=1.0,
        broker_cpu_us=_median([s.per_request_us(s.broker_cpu_s) for s in samples]),
        cpu_vs_livez=None,
        storage_cpu_us=_median([s.per_request_us(s.storage_cpu_s) for s in samples]),
        requests=sum(r.requests for r in runs),
        unexpected=sum(r.unexpected(200) for r in runs),
        socket_errors=sum(r.socket_errors for r in runs),
    )


def storage_baseline(run: Run, url: str) -> list[storage.StorageResult]:
    if run.args.storage_requests <= 0:
        return []
    print(f"redis-benchmark against {url}", flush=True)
    found = []
    for pipeline in (1, 16):
        found += storage.run_redis_benchmark(url, run.args.storage_requests, pipeline)
    return found


LEGEND = """\
wrk, the broker's workers and Redis share the machine's cores. "vs /livez" is the rate \
relative to GET /livez with the same number of workers. "broker CPU µs/req" is the CPU time \
(user + system) of the broker's processes during the run divided by the responses: the cost of \
a request, much less sensitive than req/s to other load on the machine; "vs /livez by CPU" is \
/livez's cost over the row's, the rate ratio the broker would reach with a core to itself. \
"Redis CPU µs/req" is the same for the Redis server (which also serves anything else running). \
"non-200" counts responses of any other status (a 204 on GET means the queue ran empty)."""


def setup_line(a: argparse.Namespace) -> str:
    storage_name = "embedded Valkey" if a.embedded else a.redis_url
    profiled = " Profiled with py-spy (figures lowered by it)." if a.profile else ""
    return (
        f"Load: wrk -t{a.threads} -c{a.connections}, {a.duration} s per endpoint after a "
        f"{a.warmup} s warm-up, {a.rounds} round(s) (figures are medians over the rounds, "
        f"counts are totals), {a.value_size}-byte values, queue `{QUEUE}`, storage "
        f"{storage_name}.{profiled}\n\n{LEGEND}"
    )


def write_report(
    args: argparse.Namespace,
    argv: list[str],
    header: dict[str, str],
    rows: list[report.Row],
    baseline: list[storage.StorageResult],
) -> None:
    """Print the report and write it (and the raw figures as JSON) to ``--output``."""
    command = "python bench/run.py " + shlex.join(argv)
    text = report.render(command, header, setup_line(args), rows, baseline)
    print("\n" + text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = {
        "command": command,
        "machine": header,
        "rows": [asdict(r) for r in rows],
        "storage": [asdict(s) for s in baseline],
    }
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"written to {args.output}")


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    run = Run(args, ensure_wrk())
    load = machine.load_average()
    RESULTS.mkdir(parents=True, exist_ok=True)
    redis_url = None if args.embedded else args.redis_url
    rows: list[report.Row] = []
    baseline: list[storage.StorageResult] = []
    header: dict[str, str] = {}
    for workers in args.workers:
        with Broker(workers, redis_url, args.source.resolve()) as broker:
            target = open_target(broker)
            rows += bench_target(run, target)
            if not header:  # the first broker: its storage is up for the baseline
                version, wrk = target.storage_version, wrk_version(run.wrk)
                header = machine.describe(args.source, version, wrk, load, args.label)
                baseline = storage_baseline(run, broker.storage_url)
    write_report(args, argv, header, rows, baseline)


if __name__ == "__main__":
    main(sys.argv[1:])
