"""The benchmark: the whole pipeline, stage by stage, against a hand-written DuckDB floor.

    uv run --frozen python bench/run.py                      # scales 1, 10, 100 (`make bench`)
    uv run --frozen python bench/run.py --scales 1,10        # a quicker run
    uv run --frozen python bench/run.py --scales 1 --skip-floor --skip-rerun

For each scale, in this order:

1. the reference landing zone, generated once and cached in ``bench/.cache/scale-<S>/``
   (regenerated when missing or when the generator's code or inputs change);
2. the FLOOR (``bench/floor.sql``): the same work as one DuckDB script in a fresh process;
3. the pipeline COLD: ``gvw run`` in a fresh process on a fresh data directory (the landing
   files hard-linked from the cache, a new warehouse, a new Dagster instance);
4. a RERUN: ``gvw run`` again on the same data directory with no new files, checking that
   it rewrites nothing (raw tables' content hash, load ledger, export manifest version and
   files).

Measured for every process: wall time; CPU time (user + system of the process and every
descendant, from ``wait4``); peak memory (``ru_maxrss``: the largest single process, and
the process tree's RSS summed, sampled from /proc). Per stage of the pipeline (ingest, dbt,
quality, export: Dagster steps mapped to stages by their asset groups), from the progress
lines ``gvw run`` prints: wall time between a step's ``start`` and ``done`` lines, CPU time
of the process tree between them (/proc/<pid>/stat of every process of the tree, children
already reaped included through their parent's cutime/cstime), and peak RSS (the main
process's exact high-water mark, reset at each step start through /proc/<pid>/clear_refs,
and the tree's sampled RSS). See bench/README.md.

Results: ``bench/results.md`` and ``bench/results.csv`` (``--no-write`` to only print).
``--floor-worker`` is the floor's own process (used by this script and by the tests).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT, load_settings

BENCH_DIR = PROJECT_ROOT / "bench"
CACHE_DIR = BENCH_DIR / ".cache"
FLOOR_SQL = BENCH_DIR / "floor.sql"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
RESULTS_MD = BENCH_DIR / "results.md"
RESULTS_CSV = BENCH_DIR / "results.csv"
SEED = 2017
DEFAULT_SCALES = (1.0, 10.0, 100.0)
# `make bench` must finish within 20 minutes on the reference machine (2 cores).
DEFAULT_BUDGET_S = 19 * 60
# What the generator's output depends on: a change to any of these regenerates the cache.
GENERATOR_INPUTS = (
    "orchestration/generate/*.py",
    "orchestration/reference/reference_figures.json",
    "dbt_project/seeds/countries.csv",
    "dbt_project/seeds/options.csv",
)
STAGES = ("ingest", "dbt", "quality", "export")
GROUP_STAGE = {"ingest": "ingest", "warehouse": "dbt", "quality": "quality", "exports": "export"}
PROGRESS_RE = re.compile(r"^\[\s*([0-9.]+)s\] (start|done|FAILED|skip)\s+(\S+?)(?::|\s|$)")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
DBT_NODE_RE = re.compile(r"^\d+ of \d+ (OK|PASS|WARN|ERROR|FAIL|SKIP)\b(.*?)\s*\.*\s*\[.*?\bin ([0-9.]+)s\]\s*$")
DBT_FINISHED_RE = re.compile(r"^Finished running .*\(([0-9.]+)s\)\.?\s*$")
DBT_FIRST_NODE_RE = re.compile(r"^1 of \d+ START\b")
DBT_STARTED_RE = re.compile(r"^Running with dbt=")
DBT_PARSED_RE = re.compile(r"^Found \d+ models?")
RUN_OK_RE = re.compile(r"^run ([0-9a-f-]{36}) succeeded in ([0-9.]+)s")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def fmt_scale(scale: float) -> str:
    return f"{scale:g}"


# --- the machine ------------------------------------------------------------------------------

def machine_description() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical ({len(os.sched_getaffinity(0))} usable)",
        "memory": mem_gib,
        "os": os_name,
        "python": platform.python_version(),
        "duckdb": version("duckdb"),
        "dbt-core": version("dbt-core"),
        "dbt-duckdb": version("dbt-duckdb"),
        "dagster": version("dagster"),
        "dagster-dbt": version("dagster-dbt"),
        "great-expectations": version("great-expectations"),
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# --- landing zones ----------------------------------------------------------------------------

def generator_fingerprint() -> str:
    digest = hashlib.sha256()
    for pattern in GENERATOR_INPUTS:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def ensure_landing_zone(scale: float, log=print) -> tuple[Path, dict]:
    """The cached landing zone of ``scale`` (generated in a child process if missing or
    stale); returns its folder (``landing/``, ``expected.json``) and its description."""
    target = CACHE_DIR / f"scale-{fmt_scale(scale)}"
    meta_path = target / "generated.json"
    fingerprint = generator_fingerprint()
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint and (target / "expected.json").exists():
            return target, meta
        log(f"scale {fmt_scale(scale)}: the generator changed, regenerating the landing zone")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"scale {fmt_scale(scale)}: generating the landing zone into {target}")
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from orchestration.generate import generate_landing_zone; "
         "generate_landing_zone(sys.argv[1], scale=float(sys.argv[2]), seed=int(sys.argv[3]))",
         str(tmp), repr(scale), str(SEED)],
        check=True)
    seconds = time.monotonic() - started
    files = [p for p in (tmp / "landing").rglob("*") if p.is_file()]
    expected = json.loads((tmp / "expected.json").read_text())
    meta = {"fingerprint": fingerprint, "scale": scale, "seed": SEED, "generated_seconds": round(seconds, 1),
            "files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "vote_records": expected["records"]["votes"], "workshop_lines": expected["records"]["workshops"],
            "votes": expected["figures"]["votes"], "workshops": expected["figures"]["workshops"]}
    (tmp / "generated.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target, meta


def fresh_data_dir(landing_zone: Path, name: str) -> Path:
    """A new, empty data directory whose landing files are hard links to the cached ones
    (same bytes, no copy; copied when the cache is on another file system)."""
    data_dir = CACHE_DIR / "work" / name
    shutil.rmtree(data_dir, ignore_errors=True)
    source = landing_zone / "landing"
    for path in sorted(source.rglob("*")):
        target = data_dir / "landing" / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    for folder in ("votes", "workshops"):
        (data_dir / "landing" / folder).mkdir(parents=True, exist_ok=True)
    return data_dir


# --- measuring a process tree -----------------------------------------------------------------

def _read_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return int(fields[1]), ticks / CLK_TCK


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


class TreeMonitor:
    """CPU time and RSS of a process and all its descendants, from /proc."""

    def __init__(self, root: int, interval: float) -> None:
        self.root = root
        self.interval = interval
        self.label = "startup"
        self.peak_kb: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.can_reset_hwm = True

    def tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            st = _read_stat(int(entry.name))
            if st is not None:
                parents.setdefault(st[0], []).append(int(entry.name))
        found, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(parents.get(pid, []))
        return found

    def sample(self) -> tuple[float, int]:
        """(CPU seconds of the tree, RSS of the tree in kB); records the RSS peak of the
        current label."""
        cpu, rss = 0.0, 0
        for pid in self.tree():
            st = _read_stat(pid)
            if st is not None:
                cpu += st[1]
                rss += _rss_kb(pid)
        with self.lock:
            if rss > self.peak_kb.get(self.label, 0):
                self.peak_kb[self.label] = rss
        return cpu, rss

    def set_label(self, label: str) -> None:
        with self.lock:
            self.label = label

    def reset_main_hwm(self) -> None:
        """Reset the main process's peak RSS (VmHWM), so that the next read is the peak of
        what ran since (Linux >= 4.0; silently skipped where not allowed)."""
        if not self.can_reset_hwm:
            return
        try:
            Path(f"/proc/{self.root}/clear_refs").write_text("5")
        except OSError:
            self.can_reset_hwm = False

    def main_hwm_kb(self) -> int:
        return _status_kb(self.root, "VmHWM:")

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@dataclass
class Step:
    key: str
    stage: str
    start: float
    end: float | None = None
    status: str = "running"
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    main_hwm_kb: int = 0


@dataclass
class Measured:
    """One measured process."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    maxrss_mb: float = 0.0           # ru_maxrss: the largest single process of the tree
    peak_tree_mb: float = 0.0        # the tree's RSS summed, sampled
    exit_code: int | None = None
    timed_out: bool = False
    steps: list[Step] = field(default_factory=list)
    peak_by_label_kb: dict[str, int] = field(default_factory=dict)
    lines: list[tuple[float, str]] = field(default_factory=list)
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def run_measured(name: str, cmd: list[str], env: dict[str, str], log_path: Path, timeout: float,
                 stage_of_step=None, interval: float = 0.2) -> Measured:
    """Run ``cmd`` in a new session, reading its output line by line (timestamped), and
    measure it. ``stage_of_step`` maps a progress line's step key to a stage."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result = Measured(name=name, log_path=log_path)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=PROJECT_ROOT)
    monitor = TreeMonitor(proc.pid, interval)
    monitor.start()

    killed: list[int] = []

    def kill() -> None:
        """Stop the run at the deadline: the child and every descendant, by process id
        (dbt may run in a session of its own, out of reach of the child's group)."""
        result.timed_out = True
        pids = monitor.tree()
        killed.extend(pids)
        for pid in reversed(pids):  # descendants first
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    open_steps: dict[str, Step] = {}
    with open(log_path, "w", encoding="utf-8") as log:
        for raw in iter(proc.stdout.readline, b""):
            now = time.monotonic() - started
            line = ANSI_RE.sub("", raw.decode("utf-8", "replace").rstrip("\r\n"))
            log.write(f"[{now:8.2f}] {line}\n")
            result.lines.append((now, line))
            m = PROGRESS_RE.match(line)
            if not m or stage_of_step is None:
                continue
            event, key = m.group(2), m.group(3)
            if event == "start":
                stage = stage_of_step(key)
                monitor.reset_main_hwm()
                cpu, _ = monitor.sample()
                step = Step(key=key, stage=stage, start=now, cpu_start=cpu)
                open_steps[key] = step
                result.steps.append(step)
                monitor.set_label(stage)
            elif key in open_steps:
                step = open_steps.pop(key)
                cpu, _ = monitor.sample()
                step.end, step.cpu_end = now, cpu
                step.status = {"done": "ok", "FAILED": "failed", "skip": "skipped"}[event]
                step.main_hwm_kb = monitor.main_hwm_kb()
                monitor.set_label("orchestration")
    # reap the process ourselves: wait4 gives its resource usage with its descendants'
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    timer.cancel()
    monitor.close()
    # killed descendants may outlive the child for a moment (holding the warehouse's lock)
    deadline = time.monotonic() + 15
    while killed and time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in killed[1:]):
        time.sleep(0.2)
    result.wall_s = time.monotonic() - started
    result.exit_code = proc.returncode
    result.cpu_s = usage.ru_utime + usage.ru_stime
    result.maxrss_mb = usage.ru_maxrss / 1024
    result.peak_by_label_kb = dict(monitor.peak_kb)
    result.peak_tree_mb = max(list(monitor.peak_kb.values()) + [0]) / 1024
    result.peak_tree_mb = max(result.peak_tree_mb, max((s.main_hwm_kb for s in result.steps), default=0) / 1024)
    return result


# --- the pipeline -----------------------------------------------------------------------------

def gvw_command() -> list[str]:
    beside = Path(sys.executable).with_name("gvw")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "orchestration.cli"]


def child_env(data_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach us when printed
    if data_dir is not None:
        env["GVW_DATA_DIR"] = str(data_dir)
        env["DAGSTER_HOME"] = str(data_dir / ".dagster")
    return env


_STEP_GROUPS_CODE = """
import json
from orchestration.definitions import defs
definitions = defs if hasattr(defs, "resolve_asset_graph") else defs()  # @dg.definitions is lazy
graph = definitions.resolve_asset_graph()
out = {}
for ad in graph.assets_defs:
    if not ad.is_executable:
        continue
    # assets: their groups; asset checks (no group of their own): the group of the assets
    # module that defines them (quality checks of a dbt model are quality work, not dbt's)
    groups = set(ad.group_names_by_key.values())
    if not groups:
        fn = getattr(getattr(ad.node_def, "compute_fn", None), "decorated_fn", None)
        module = getattr(fn, "__module__", "") or ""
        groups = {group for prefix, group in MODULE_GROUP.items() if module == prefix}
    if not groups:
        groups = {graph.get(key.asset_key).group_name for key in ad.check_keys}
    out[ad.node_def.name] = sorted(g for g in groups if g)
print("STEP-GROUPS " + json.dumps(out))
"""
# Where the asset checks of each stage are defined (checks have no asset group).
MODULE_GROUP = {"orchestration.assets.ingest": "ingest", "orchestration.assets.warehouse": "warehouse",
                "orchestration.assets.quality": "quality", "orchestration.assets.export": "exports"}


def step_groups(log=print) -> dict[str, list[str]]:
    """Dagster step key (the op of an asset or check definition) -> asset groups, read from
    the code location in a child process (so this process stays small)."""
    try:
        code = f"MODULE_GROUP = {MODULE_GROUP!r}\n{_STEP_GROUPS_CODE}"
        out = subprocess.run([sys.executable, "-c", code], env=child_env(), cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        log("could not load the Dagster definitions (timeout): stages guessed from step names")
        return {}
    for line in out.stdout.splitlines():
        if line.startswith("STEP-GROUPS "):
            return json.loads(line[len("STEP-GROUPS "):])
    log("could not load the Dagster definitions: stages guessed from step names\n" + out.stderr[-2000:])
    return {}


def stage_mapper(groups: dict[str, list[str]]):
    def stage_of(step_key: str) -> str:
        key = step_key.split("[")[0]
        for group in groups.get(key, []):
            if group in GROUP_STAGE:
                return GROUP_STAGE[group]
        # not in the definitions (or they could not be loaded): by name
        lowered = key.lower()
        for needle, stage in (("gx_", "quality"), ("quality", "quality"), ("audit", "quality"),
                              ("expect", "quality"), ("ingest", "ingest"), ("raw", "ingest"), ("dbt", "dbt"),
                              ("warehouse", "dbt"), ("export", "export")):
            if needle in lowered:
                return stage
        return "other"
    return stage_of


def stage_summary(run: Measured) -> dict[str, dict]:
    """Per stage: wall (sum of its steps), CPU, peak RSS; plus start-up (process start to
    the first step), orchestration (between steps) and shut-down (last step to exit)."""
    out: dict[str, dict] = {}
    for step in run.steps:
        if step.end is None:
            continue
        s = out.setdefault(step.stage, {"wall_s": 0.0, "cpu_s": 0.0, "peak_mb": 0.0, "steps": 0})
        s["wall_s"] += step.end - step.start
        s["cpu_s"] += step.cpu_end - step.cpu_start
        s["steps"] += 1
        s["peak_mb"] = max(s["peak_mb"], step.main_hwm_kb / 1024)
    for stage, s in out.items():
        s["peak_mb"] = max(s["peak_mb"], run.peak_by_label_kb.get(stage, 0) / 1024)
    done = [s for s in run.steps if s.end is not None]
    if done:
        first, last = min(s.start for s in done), max(s.end for s in done)
        in_steps = sum(s.end - s.start for s in done)
        out["startup"] = {"wall_s": first, "cpu_s": None, "peak_mb": run.peak_by_label_kb.get("startup", 0) / 1024}
        out["orchestration"] = {"wall_s": max(0.0, (last - first) - in_steps), "cpu_s": None, "peak_mb": None}
        out["shutdown"] = {"wall_s": max(0.0, run.wall_s - last), "cpu_s": None, "peak_mb": None}
        out["pipeline_work"] = {"wall_s": last - first, "cpu_s": None, "peak_mb": None}
    return out


def dbt_profile(run: Measured) -> dict:
    """From dbt's own output lines: start-up (step start -> first node), the time dbt says
    it ran, node time by kind, and the slowest nodes."""
    dbt_steps = [s for s in run.steps if s.stage == "dbt" and s.end is not None]
    if not dbt_steps:
        return {}
    step = dbt_steps[0]
    first_node = finished = finished_at = dbt_started = dbt_parsed = None
    by_kind: dict[str, float] = {}
    counts: dict[str, int] = {}
    nodes: list[tuple[float, str]] = []
    for t, line in run.lines:
        if t < step.start or t > step.end:
            continue
        if first_node is None and DBT_FIRST_NODE_RE.match(line):
            first_node = t
        if dbt_started is None and DBT_STARTED_RE.match(line):
            dbt_started = t
        if dbt_parsed is None and DBT_PARSED_RE.match(line):
            dbt_parsed = t
        m = DBT_FINISHED_RE.match(line)
        if m:
            finished, finished_at = float(m.group(1)), t
        m = DBT_NODE_RE.match(line)
        if m:
            desc, seconds = m.group(2).strip(), float(m.group(3))
            kind = ("seed" if "seed file" in desc else "model" if " model " in f" {desc} "
                    else "unit test" if "unit_test" in desc or "unit test" in desc else "test")
            by_kind[kind] = by_kind.get(kind, 0.0) + seconds
            counts[kind] = counts.get(kind, 0) + 1
            nodes.append((seconds, desc.split()[-1] if desc else "?"))
    nodes.sort(reverse=True)
    def between(a, b):
        return (b - a) if a is not None and b is not None else None

    return {
        "step_wall_s": step.end - step.start,
        "startup_s": between(step.start, first_node),
        # dbt's process start and imports (until it prints "Running with dbt=")
        "launch_s": between(step.start, dbt_started),
        # reading the project (until "Found N models ...")
        "parse_s": between(dbt_started, dbt_parsed),
        "dbt_reported_s": finished,
        # after dbt exits: Dagster turns its results into events (materializations, checks)
        "events_s": between(finished_at, step.end),
        "seconds_by_kind": by_kind,
        "count_by_kind": counts,
        "slowest": nodes[:8],
    }


def figures_from_output(run: Measured) -> dict[str, int]:
    figures, inside = {}, False
    for _, line in run.lines:
        if line.startswith("headline figures:"):
            inside = True
            continue
        if inside:
            m = re.match(r"^\s{2}(\w+)\s+([0-9,]+)\s*$", line)
            if not m:
                break
            figures[m.group(1)] = int(m.group(2).replace(",", ""))
    return figures


def run_id_of(run: Measured) -> str | None:
    for _, line in run.lines:
        m = RUN_OK_RE.match(line)
        if m:
            return m.group(1)
    return None


# --- "rewrites nothing" -----------------------------------------------------------------------

def warehouse_state(data_dir: Path) -> dict:
    """Content fingerprint of the raw tables (row count and an order-independent hash of
    the rows), the export manifest's version and the export and quality files."""
    import duckdb

    state: dict = {"raw": {}, "export_version": None, "export_files": {}, "quality_files": {}}
    path = data_dir / "warehouse.duckdb"
    if path.exists():
        conn = duckdb.connect(str(path), read_only=True)
        try:
            tables = [r[0] for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' "
                "and table_type = 'BASE TABLE' order by table_name").fetchall()]
            for table in tables:
                # the name comes from the catalog; quoted as an identifier
                ident = '"' + table.replace('"', '""') + '"'
                count, digest = conn.execute(
                    f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from raw.{ident} t").fetchone()
                state["raw"][table] = [count, str(digest)]
        finally:
            conn.close()
        state["warehouse_mtime_ns"] = path.stat().st_mtime_ns
    manifest = data_dir / "exports" / "manifest.json"
    if manifest.exists():
        try:
            info = json.loads(manifest.read_text())
            state["export_version"] = info.get("version_id") or info.get("version")
        except ValueError:
            state["export_version"] = "unreadable"
    for key, folder in (("export_files", data_dir / "exports"), ("quality_files", data_dir / "quality")):
        if folder.is_dir():
            for p in folder.rglob("*"):
                if p.is_file() and not p.is_symlink():
                    st = p.stat()
                    state[key][p.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
    return state


def compare_states(before: dict, after: dict) -> dict:
    changed_raw = sorted(t for t in set(before["raw"]) | set(after["raw"])
                         if before["raw"].get(t) != after["raw"].get(t))

    def changed(key: str) -> list[str]:
        a, b = before[key], after[key]
        return sorted(p for p in set(a) | set(b) if a.get(p) != b.get(p))

    export_changed = changed("export_files")
    return {
        "raw_tables_checked": len(before["raw"]),
        "raw_tables_changed": changed_raw,
        "export_version_before": before["export_version"],
        "export_version_after": after["export_version"],
        "export_files_changed": export_changed,
        "quality_files_changed": changed("quality_files"),
        "warehouse_file_rewritten": before.get("warehouse_mtime_ns") != after.get("warehouse_mtime_ns"),
        "rewrites_nothing": (not changed_raw and before["export_version"] == after["export_version"]
                             and not export_changed),
    }


# --- the floor --------------------------------------------------------------------------------

def split_sections(sql: str) -> list[tuple[str, str]]:
    """The ``-- @section name`` blocks of the floor script, in order."""
    parts = re.split(r"^-- @section (\w+)[ \t]*$", sql, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def run_floor_script(landing_dir: Path, out_dir: Path, *, pii_salt: str = "floor-benchmark-salt",
                     min_cell: int = 5) -> dict:
    """Execute bench/floor.sql in this process: returns the seconds of each section and its
    result (headline figures, outcome counts, global option votes and Borda points)."""
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    database = out_dir / "floor.duckdb"
    for leftover in (database, database.with_name(database.name + ".wal")):
        leftover.unlink(missing_ok=True)
    conn = duckdb.connect(str(database))
    try:
        # the parameters travel as bound values of `set variable`, read by getvariable()
        for name, value in (("landing_dir", str(Path(landing_dir).resolve())), ("seeds_dir", str(SEEDS_DIR)),
                            ("out_dir", str(Path(out_dir).resolve())), ("pii_salt", pii_salt),
                            ("min_cell", int(min_cell))):
            conn.execute(f"set variable {name} = $value", {"value": value})
        seconds: dict[str, float] = {}
        rows: list = []
        for name, body in split_sections(FLOOR_SQL.read_text(encoding="utf-8")):
            started = time.perf_counter()
            cursor = conn.execute(body)  # the section's statements, one after another
            if name == "result":
                rows = cursor.fetchall()
            seconds[name] = time.perf_counter() - started
        conn.execute("checkpoint")
    finally:
        conn.close()
    result: dict[str, dict] = {}
    for kind, name, value in rows:
        result.setdefault(kind, {})[name] = int(value) if value is not None else None
    return {"seconds": seconds, "figures": result.get("figure", {}),
            "outcomes": {"votes": result.get("votes", {}), "workshops": result.get("workshops", {})},
            "votes_by_option": result.get("votes_by_option", {}),
            "workshop_borda_points": result.get("workshop_borda_points", {}),
            "database_bytes": database.stat().st_size,
            "parquet_bytes": sum(p.stat().st_size for p in Path(out_dir).glob("*.parquet"))}


def check_against_key(figures: dict, outcomes: dict | None, expected: dict) -> list[str]:
    """Differences between computed figures/outcome counts and the generator's answer key."""
    problems = []
    for name, value in expected["figures"].items():
        if figures.get(name) != value:
            problems.append(f"{name}: {figures.get(name)} (expected {value})")
    if outcomes is not None:
        for source in ("votes", "workshops"):
            want = {k: v for k, v in expected["outcomes"][source].items() if v}
            got = {k: v for k, v in outcomes.get(source, {}).items() if v}
            for k in sorted(set(want) | set(got)):
                if want.get(k) != got.get(k):
                    problems.append(f"{source} {k}: {got.get(k)} (expected {want.get(k)})")
    return problems


# --- one scale --------------------------------------------------------------------------------

class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def bench_scale(scale: float, args, stage_of, budget: Budget, log) -> dict:
    tag = fmt_scale(scale)
    zone, meta = ensure_landing_zone(scale, log)
    expected = json.loads((zone / "expected.json").read_text())
    out: dict = {"scale": scale, "landing": meta, "notes": []}
    logs = CACHE_DIR / "logs"

    if not args.skip_floor:
        if budget.left() < 30:
            out["notes"].append("floor skipped: time budget exhausted")
        else:
            floor_dir = CACHE_DIR / "work" / f"floor-{tag}"
            shutil.rmtree(floor_dir, ignore_errors=True)
            log(f"scale {tag}: floor (bench/floor.sql) ...")
            run = run_measured(
                "floor", [sys.executable, str(Path(__file__).resolve()), "--floor-worker",
                          str(zone / "landing"), str(floor_dir)],
                child_env(), logs / f"floor-{tag}.log", timeout=budget.left(), interval=args.sample_interval)
            report = None
            for _, line in run.lines:
                if line.startswith("FLOOR-RESULT "):
                    report = json.loads(line[len("FLOOR-RESULT "):])
            run.extra["report"] = report
            if report is not None:
                run.extra["problems"] = check_against_key(report["figures"], report["outcomes"], expected)
            out["floor"] = run
            log(f"scale {tag}: floor {'ok' if run.ok else 'FAILED'} in {run.wall_s:.1f}s"
                + (f", {len(run.extra.get('problems', []))} differences from the answer key" if report else ""))
            shutil.rmtree(floor_dir, ignore_errors=True)

    if not args.skip_pipeline:
        if budget.left() < 60:
            out["notes"].append("pipeline skipped: time budget exhausted")
            return out
        data_dir = fresh_data_dir(zone, f"pipeline-{tag}")
        log(f"scale {tag}: pipeline cold (gvw run on a fresh data directory) ...")
        cold = run_measured("pipeline cold", [*gvw_command(), "run"], child_env(data_dir),
                            logs / f"pipeline-cold-{tag}.log", timeout=budget.left(),
                            stage_of_step=stage_of, interval=args.sample_interval)
        cold.extra["stages"] = stage_summary(cold)
        cold.extra["dbt"] = dbt_profile(cold)
        cold.extra["figures"] = figures_from_output(cold)
        cold.extra["problems"] = check_against_key(cold.extra["figures"], None, expected) if cold.ok else []
        out["cold"] = cold
        log(f"scale {tag}: pipeline cold {'ok' if cold.ok else 'FAILED'} in {cold.wall_s:.1f}s "
            f"(log {cold.log_path})")
        if cold.timed_out:
            out["notes"].append(f"pipeline cold stopped at the time budget after {cold.wall_s:.0f} s")
        if cold.ok and not args.skip_rerun:
            # a rerun rebuilds about as much as the cold run: do not start one that cannot end
            if budget.left() < max(30.0, 0.8 * cold.wall_s):
                out["notes"].append(f"rerun skipped: {budget.left():.0f} s of the time budget left, "
                                    f"the cold run took {cold.wall_s:.0f} s")
            else:
                try:
                    before = warehouse_state(data_dir)
                except Exception as exc:  # noqa: BLE001 - reported, the benchmark goes on
                    before = None
                    out["notes"].append(f"could not fingerprint the warehouse before the rerun: {exc}")
                log(f"scale {tag}: rerun with no new files ...")
                rerun = run_measured("pipeline rerun", [*gvw_command(), "run"], child_env(data_dir),
                                     logs / f"pipeline-rerun-{tag}.log", timeout=budget.left(),
                                     stage_of_step=stage_of, interval=args.sample_interval)
                rerun.extra["stages"] = stage_summary(rerun)
                rerun.extra["dbt"] = dbt_profile(rerun)
                try:
                    after = warehouse_state(data_dir) if before is not None else None
                except Exception as exc:  # noqa: BLE001
                    after = None
                    out["notes"].append(f"could not fingerprint the warehouse after the rerun: {exc}")
                rerun.extra["rewrites"] = compare_states(before, after) if after is not None else None
                if rerun.timed_out:
                    out["notes"].append(f"rerun stopped at the time budget after {rerun.wall_s:.0f} s")
                out["rerun"] = rerun
                rewrites = rerun.extra["rewrites"]
                log(f"scale {tag}: rerun {'ok' if rerun.ok else 'FAILED'} in {rerun.wall_s:.1f}s; "
                    f"rewrites nothing: {rewrites['rewrites_nothing'] if rewrites else 'unknown'}")
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


# --- results ----------------------------------------------------------------------------------

def _f(value, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}{unit}"


def csv_rows(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        for kind in ("floor", "cold", "rerun"):
            run: Measured | None = r.get(kind)
            if run is None:
                continue
            base = {"scale": fmt_scale(r["scale"]), "run": {"cold": "pipeline_cold", "rerun": "pipeline_rerun",
                                                             "floor": "floor"}[kind]}
            rows.append({**base, "stage": "total", "wall_s": round(run.wall_s, 2), "cpu_s": round(run.cpu_s, 2),
                         "peak_rss_mb": round(max(run.peak_tree_mb, run.maxrss_mb), 1),
                         "max_process_rss_mb": round(run.maxrss_mb, 1), "ok": run.ok})
            if kind == "floor" and run.extra.get("report"):
                for section, seconds in run.extra["report"]["seconds"].items():
                    rows.append({**base, "stage": section, "wall_s": round(seconds, 2), "cpu_s": "",
                                 "peak_rss_mb": "", "max_process_rss_mb": "", "ok": run.ok})
            for stage, s in run.extra.get("stages", {}).items():
                rows.append({**base, "stage": stage, "wall_s": round(s["wall_s"], 2),
                             "cpu_s": "" if s.get("cpu_s") is None else round(s["cpu_s"], 2),
                             "peak_rss_mb": "" if s.get("peak_mb") is None else round(s["peak_mb"], 1),
                             "max_process_rss_mb": "", "ok": run.ok})
    return rows


def targets(results: list[dict]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the issue's targets."""
    by_scale = {r["scale"]: r for r in results}
    out = []

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("**met**" if ok else "**not met**")

    r1 = by_scale.get(1.0, {})
    cold1 = r1.get("cold")
    ok = None if cold1 is None or not cold1.ok else cold1.wall_s <= 15
    out.append(("Scale 1 end to end ≤ 15 s cold (incl. Dagster and dbt start-up)",
                f"{cold1.wall_s:.1f} s" if cold1 and cold1.ok else "—", verdict(ok)))

    r100 = by_scale.get(100.0, {})
    cold100, floor100 = r100.get("cold"), r100.get("floor")
    ok, measured = None, "—"
    if cold100 and cold100.ok and floor100 and floor100.ok:
        limit = 1.5 * floor100.wall_s + 10
        ok = cold100.wall_s <= limit
        measured = f"{cold100.wall_s:.1f} s vs limit {limit:.1f} s (floor {floor100.wall_s:.1f} s)"
    out.append(("Scale 100 ≤ 1.5 × floor + 10 s", measured, verdict(ok)))

    ok, measured = None, "—"
    if cold100 and cold100.ok:
        peak = max(cold100.peak_tree_mb, cold100.maxrss_mb)
        ok = peak <= 2048
        measured = f"{peak:,.0f} MB (tree, sampled; largest process {cold100.maxrss_mb:,.0f} MB)"
    out.append(("Peak memory ≤ 2 GB at scale 100", measured, verdict(ok)))

    measured_parts, oks = [], []
    for scale in sorted(by_scale):
        rerun = by_scale[scale].get("rerun")
        if rerun is None or not rerun.ok or not rerun.extra.get("rewrites"):
            continue
        work = rerun.extra["stages"].get("pipeline_work", {}).get("wall_s")
        nothing = rerun.extra["rewrites"]["rewrites_nothing"]
        oks.append(work is not None and work <= 3 and nothing)
        measured_parts.append(f"scale {fmt_scale(scale)}: {_f(work)} s of pipeline work "
                              f"({rerun.wall_s:.1f} s wall), rewrites nothing: {'yes' if nothing else 'NO'}")
    out.append(("Rerun with no new files ≤ 3 s of pipeline work, rewrites nothing",
                "; ".join(measured_parts) or "—", verdict(all(oks) if oks else None)))
    return out


def render_markdown(results: list[dict], machine: dict, context: dict) -> str:
    md = io.StringIO()
    w = md.write
    w("# Benchmark results\n\n")
    w(f"Written by `bench/run.py` ({context['command']}) on {context['date']}; total {context['seconds']:.0f} s. "
      "How it measures: `bench/README.md`.\n\n")
    w("## Machine\n\n| | |\n| --- | --- |\n")
    for k, v in machine.items():
        w(f"| {k} | {v} |\n")
    w(f"| load average (start → end) | {context['load_start']} → {context['load_end']} |\n")
    w(f"| pipeline's DuckDB memory limit | {load_settings(child_env(Path('.'))).duckdb_memory_limit} per connection |\n\n")
    if context.get("noise"):
        w(f"> {context['noise']}\n\n")

    w("## Summary (for the README)\n\n")
    w("| scale | votes | landing MB | pipeline cold s | ingest s | dbt s | quality s | export s | "
      "start-up s | CPU s | peak MB | rerun s | floor s | floor CPU s | floor peak MB | cold / floor |\n")
    w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for r in results:
        cold, rerun, floor = r.get("cold"), r.get("rerun"), r.get("floor")
        st = cold.extra.get("stages", {}) if cold else {}

        def stage_wall(name: str) -> str:
            return _f(st.get(name, {}).get("wall_s")) if name in st else "—"

        ok_cold = cold is not None and cold.ok
        w(f"| {fmt_scale(r['scale'])} | {r['landing']['votes']:,} | {r['landing']['bytes'] / 1e6:,.0f} | "
          f"{_f(cold.wall_s) if ok_cold else (('stopped' if cold.timed_out else 'failed') if cold else '—')} | "
          f"{stage_wall('ingest')} | "
          f"{stage_wall('dbt')} | {stage_wall('quality')} | {stage_wall('export')} | {stage_wall('startup')} | "
          f"{_f(cold.cpu_s) if ok_cold else '—'} | "
          f"{_f(max(cold.peak_tree_mb, cold.maxrss_mb), 0) if ok_cold else '—'} | "
          f"{_f(rerun.wall_s) if rerun and rerun.ok else '—'} | "
          f"{_f(floor.wall_s) if floor and floor.ok else '—'} | {_f(floor.cpu_s) if floor and floor.ok else '—'} | "
          f"{_f(max(floor.peak_tree_mb, floor.maxrss_mb), 0) if floor and floor.ok else '—'} | "
          f"{_f(cold.wall_s / floor.wall_s, 1, '×') if ok_cold and floor and floor.ok else '—'} |\n")
    w("\nSeconds are wall-clock; stage columns are the sum of the stage's Dagster steps; start-up is "
      "process start to the first step (imports, Dagster definitions and dbt manifest, the Dagster instance, "
      "the run's creation). CPU is user + system "
      "of the whole process tree. Peak MB is the process tree's resident memory.\n\n")

    w("## Targets\n\n| target | measured | verdict |\n| --- | --- | --- |\n")
    for target, measured, verdict in targets(results):
        w(f"| {target} | {measured} | {verdict} |\n")
    w("\n")

    for error in context.get("harness_errors", []):
        w(f"> The benchmark itself failed at {error}: that scale is missing below.\n\n")
    w("## Correctness of what was timed\n\n")
    for r in results:
        tag = fmt_scale(r["scale"])
        floor, cold = r.get("floor"), r.get("cold")
        if floor is not None:
            report = floor.extra.get("report")
            if not floor.ok or report is None:
                w(f"- scale {tag}: the floor FAILED (log `{floor.log_path}`)\n")
            else:
                problems = floor.extra.get("problems", [])
                w(f"- scale {tag}: floor headline figures and per-outcome counts "
                  f"{'equal the answer key' if not problems else 'DIFFER from the answer key: ' + '; '.join(problems[:5])}\n")
        if cold is not None:
            if not cold.ok:
                w(f"- scale {tag}: the pipeline run FAILED (exit {cold.exit_code}"
                  f"{', timed out' if cold.timed_out else ''}; log `{cold.log_path}`)\n")
            else:
                problems = cold.extra.get("problems", [])
                w(f"- scale {tag}: pipeline headline figures "
                  f"{'equal the answer key' if not problems else 'DIFFER from the answer key: ' + '; '.join(problems[:5])}\n")
        for note in r.get("notes", []):
            w(f"- scale {tag}: {note}\n")
    w("\n")

    w("## Stages\n\n| scale | run | stage | wall s | CPU s | peak MB |\n| ---: | --- | --- | ---: | ---: | ---: |\n")
    for r in results:
        for kind in ("cold", "rerun"):
            run = r.get(kind)
            if run is None:
                continue
            for stage in ("startup", *STAGES, "other", "orchestration", "shutdown", "pipeline_work"):
                s = run.extra.get("stages", {}).get(stage)
                if s is None:
                    continue
                w(f"| {fmt_scale(r['scale'])} | {run.name} | {stage.replace('_', ' ')} | {_f(s['wall_s'])} | "
                  f"{_f(s.get('cpu_s'))} | {_f(s.get('peak_mb'), 0)} |\n")
            w(f"| {fmt_scale(r['scale'])} | {run.name} | **total** | {_f(run.wall_s)} | {_f(run.cpu_s)} | "
              f"{_f(max(run.peak_tree_mb, run.maxrss_mb), 0)} |\n")
        floor = r.get("floor")
        if floor is not None and floor.extra.get("report"):
            for section, seconds in floor.extra["report"]["seconds"].items():
                w(f"| {fmt_scale(r['scale'])} | floor | {section} | {_f(seconds)} | — | — |\n")
            w(f"| {fmt_scale(r['scale'])} | floor | **total** | {_f(floor.wall_s)} | {_f(floor.cpu_s)} | "
              f"{_f(max(floor.peak_tree_mb, floor.maxrss_mb), 0)} |\n")
    w("\n")

    w("## dbt\n\nThe dbt step split in four: dbt's launch (process start and imports, until it prints "
      "`Running with dbt=`), parsing the project (until `Found N models`), the build (the time dbt reports; "
      "models, tests and seeds are the sums of dbt's per-node times), and Dagster's handling of the results "
      "(after dbt finished: one materialization or check event per node).\n\n")
    w("| scale | run | dbt step s | launch s | parse s | build s | Dagster events s | models s | tests s | seeds s | "
      "slowest nodes |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    for r in results:
        for kind in ("cold", "rerun"):
            run = r.get(kind)
            d = run.extra.get("dbt") if run else None
            if not d:
                continue
            k = d["seconds_by_kind"]
            slowest = ", ".join(f"{name} {sec:.1f}" for sec, name in d["slowest"][:4])
            w(f"| {fmt_scale(r['scale'])} | {run.name} | {_f(d['step_wall_s'])} | {_f(d['launch_s'])} | "
              f"{_f(d['parse_s'])} | {_f(d['dbt_reported_s'])} | {_f(d['events_s'])} | {_f(k.get('model'))} | {_f((k.get('test') or 0) + (k.get('unit test') or 0))} | "
              f"{_f(k.get('seed'))} | {slowest} |\n")
    w("\n")

    reruns = [(r["scale"], r["rerun"]) for r in results if r.get("rerun") is not None]
    if reruns:
        w("## Rerun with no new files\n\n")
        for scale, rerun in reruns:
            c = rerun.extra.get("rewrites")
            if not rerun.ok or not c:
                w(f"- scale {fmt_scale(scale)}: the rerun did not complete or could not be checked\n")
                continue
            w(f"- scale {fmt_scale(scale)}: {rerun.wall_s:.1f} s wall, "
              f"{_f(rerun.extra['stages'].get('pipeline_work', {}).get('wall_s'))} s of pipeline work; "
              f"raw tables changed: {', '.join(c['raw_tables_changed']) or 'none'} (of {c['raw_tables_checked']}); "
              f"export manifest version {c['export_version_before']} → {c['export_version_after']}; "
              f"export files changed: {len(c['export_files_changed'])}; quality files rewritten: "
              f"{len(c['quality_files_changed'])}; warehouse file rewritten: "
              f"{'yes' if c['warehouse_file_rewritten'] else 'no'}\n")
        w("\n")

    w("## Landing zones\n\n| scale | files | MB | vote records | workshop lines | generated in s (cached) |\n"
      "| ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for r in results:
        m = r["landing"]
        w(f"| {fmt_scale(r['scale'])} | {m['files']} | {m['bytes'] / 1e6:,.1f} | {m['vote_records']:,} | "
          f"{m['workshop_lines']:,} | {m['generated_seconds']} |\n")
    w("\n")
    if context.get("observations"):
        w("## Observations\n\n" + context["observations"].strip() + "\n")
    return md.getvalue()


def noise_note(load_start: str) -> str:
    """A warning when other processes competed for the CPU (load average above the cores)."""
    loads = [float(x.split()[0]) for x in (load_start, load_average()) if x != "unknown"]
    if loads and max(loads) > (os.cpu_count() or 1):
        return ("Noisy run: the load average exceeded the number of cores, i.e. other processes competed for "
                "the CPU during the benchmark; wall times are inflated (CPU times much less so).")
    return ""


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = ["scale", "run", "stage", "wall_s", "cpu_s", "peak_rss_mb", "max_process_rss_mb", "ok"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def preserved_observations() -> str:
    """The hand-written "Observations" section of the previous results.md, kept across runs."""
    if not RESULTS_MD.exists():
        return ""
    text = RESULTS_MD.read_text(encoding="utf-8")
    marker = "\n## Observations\n"
    return text.split(marker, 1)[1] if marker in text else ""


# --- entry points -----------------------------------------------------------------------------

def floor_worker(landing: str, out_dir: str) -> int:
    report = run_floor_script(Path(landing), Path(out_dir))
    print("FLOOR-RESULT " + json.dumps(report), flush=True)
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the pipeline against the hand-written DuckDB floor.")
    p.add_argument("--scales", default=",".join(fmt_scale(s) for s in DEFAULT_SCALES),
                   help="comma-separated scales (default 1,10,100)")
    p.add_argument("--skip-floor", action="store_true", help="do not run the floor")
    p.add_argument("--skip-pipeline", action="store_true", help="do not run the pipeline (floor only)")
    p.add_argument("--skip-rerun", action="store_true", help="do not run the rerun with no new files")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S,
                   help="seconds for the whole benchmark; runs that no longer fit are skipped (default 1140)")
    p.add_argument("--sample-interval", type=float, default=0.2, help="seconds between /proc samples")
    p.add_argument("--keep", action="store_true", help="keep the pipeline's data directories in bench/.cache/work")
    p.add_argument("--no-write", action="store_true", help="print the results, do not write results.md/.csv")
    p.add_argument("--floor-worker", nargs=2, metavar=("LANDING", "OUT_DIR"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.floor_worker:
        return floor_worker(*args.floor_worker)
    started = time.monotonic()
    budget = Budget(args.budget)
    scales = [float(s) for s in args.scales.split(",") if s.strip()]

    def log(message: str) -> None:
        print(f"[bench {time.monotonic() - started:7.1f}s] {message}", flush=True)

    machine = machine_description()
    load_start = load_average()
    stage_of = stage_mapper({} if args.skip_pipeline else step_groups(log))
    results: list[dict] = []
    harness_errors: list[str] = []
    for scale in scales:
        try:
            results.append(bench_scale(scale, args, stage_of, budget, log))
        except Exception as exc:  # noqa: BLE001 - keep the other scales' results
            log(f"scale {fmt_scale(scale)}: the benchmark itself failed: {type(exc).__name__}: {exc}")
            harness_errors.append(f"scale {fmt_scale(scale)}: {type(exc).__name__}: {exc}")
    context = {
        "command": "`python bench/run.py" + "".join(" " + a for a in argv) + "`" + ("" if argv else ", as `make bench`"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.monotonic() - started,
        "load_start": load_start, "load_end": load_average(),
        "noise": noise_note(load_start),
        "observations": preserved_observations(),
        "harness_errors": harness_errors,
    }
    markdown = render_markdown(results, machine, context)
    if args.no_write:
        print(markdown)
    else:
        RESULTS_MD.write_text(markdown, encoding="utf-8")
        write_csv(RESULTS_CSV, csv_rows(results))
        print(markdown)
        log(f"results written to {RESULTS_MD} and {RESULTS_CSV}")
    failed = [r for r in results for k in ("floor", "cold", "rerun")
              if r.get(k) is not None and not r[k].ok and not r[k].timed_out]
    return 1 if failed or harness_errors else 0


if __name__ == "__main__":
    sys.exit(main())
