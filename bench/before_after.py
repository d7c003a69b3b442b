"""Run one benchmark on the previous code and on the current code, side by side, as ratios.

    python bench/before_after.py [--ref REF] [--rounds 2] [--timeout S] [--after-ref REF2] -- bench/SCRIPT.py [ARGS...]

    python bench/before_after.py --ref HEAD --rounds 2 -- bench/speed.py --repeat 100
    python bench/before_after.py --ref HEAD~3 -- bench/api.py --seconds 10 --clients 1,10

"before" is ``REF`` (a commit, default ``HEAD``), checked out as a temporary detached
``git worktree`` (removed at the end, also on error or Ctrl-C). "after" is the current
working tree, uncommitted edits included (or ``--after-ref REF2``, a second worktree).

Each side runs its own copy of the script (``<worktree>/bench/SCRIPT.py`` for before,
``bench/SCRIPT.py`` for after) with the same arguments, the same interpreter and the same
working directory (this repository's root, so relative data paths such as
``../shared/data`` mean the same for both), with ``PYTHONPATH=<side>/src`` prepended so
that ``import facegate`` resolves to that side's code and not to the editable install's
``.pth`` entry (``PYTHONPATH`` comes before site-packages on ``sys.path``). Child processes
inherit that environment, so a server the bench starts (``python -m facegate serve`` in
``bench/api.py``) runs the same side's code.

That is checked, not assumed: before the runs, ``import facegate`` is probed under each
side's environment and the tool stops if it resolves elsewhere. During the runs, a
``sitecustomize`` on ``PYTHONPATH`` logs where every Python process of the run (the bench
and any Python children) imported ``facegate`` from; a run in which any process imported
the other side's code counts as failed.

Why alternate and take medians: machines drift (thermal throttling, turbo budgets, page
cache, other load), so running every "before" first would bias the ratio. Round 1 runs
before then after, round 2 after then before, and so on; each side's value per key is the
median over rounds, which also discounts a single noisy run. Use an even ``--rounds`` so
that each side runs first equally often; more rounds for noisy benchmarks.

Benchmarks report on their last line of stdout as ``key=value`` pairs; this tool takes the
last such line of each run. Output: each run's output streamed to stderr, prefixed
``[before r1]`` and so on; then a table (key, before median, after median, after/before,
values per round) on stdout; and a last line ``<key>_before=B <key>_after=A <key>_ratio=R``
for each numeric key (non-numeric keys appear in the table only). A ratio is ``nan`` for
0/0 and ``inf`` for x/0. Whether a ratio above 1 is better or worse depends on the key
(frames per second versus milliseconds).

Exit status: 0 when every run succeeded; 1 when a run failed (its exit code and the tail of
its stderr are shown; remaining runs still go ahead) or ``facegate`` does not import on a
side; 2 for a usage problem (unknown ref, script missing on a side, import resolving to the
wrong tree); 130 on Ctrl-C or SIGTERM (the run in progress is stopped, worktrees removed).
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAIR = re.compile(r"^[A-Za-z_][\w.\-]*=\S*$")
TRACE_ENV = "FACEGATE_BENCH_IMPORT_TRACE"
PROBE = "import facegate; print(facegate.__file__)"
STDERR_TAIL = 25
EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$")


# Loaded by every Python process started with the run's PYTHONPATH (before site-packages,
# so it shadows any other sitecustomize; ``chain`` runs that one). Logs where ``facegate``
# is imported from, as decided by the import system's own finders. Kept small: it adds to
# every interpreter start (about 1 ms, the same on both sides).
def sitecustomize(chain: str | None) -> str:
    code = f"""\
import os, sys

_log = os.environ.get({TRACE_ENV!r})


class _FacegateTrace:
    def find_spec(self, name, path=None, target=None):
        if name != "facegate" or not _log:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                with open(_log, "a") as f:
                    f.write(f"{{os.getpid()}}\\t{{spec.origin}}\\t{{' '.join(sys.argv)[:200]}}\\n")
                return spec
        return None


sys.meta_path.insert(0, _FacegateTrace())
"""
    if chain:
        code += f"""
with open({chain!r}) as _f:
    exec(compile(_f.read(), {chain!r}, "exec"), {{"__name__": "sitecustomize", "__file__": {chain!r}}})
"""
    return code


def existing_sitecustomize() -> str | None:
    """The interpreter's own sitecustomize, if it has one (to be run by ours)."""
    code = "import importlib.util as u; s = u.find_spec('sitecustomize'); print(s.origin if s else '')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip() or None


class Abort(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Side:
    name: str  # "before" or "after"
    label: str  # what it is, for people
    root: Path  # tree holding src/ and the script
    script: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    side: str
    round: int
    code: int | None = None
    seconds: float = 0.0
    result: dict[str, str] | None = None
    problems: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)  # exception lines anywhere in stderr (children's too)

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.result is not None and not self.problems


_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, file=sys.stderr, flush=True)


def git(*args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise Abort(f"git {' '.join(args)} failed: {done.stderr.strip()}", 2)
    return done.stdout.strip()


def resolve_commit(ref: str) -> tuple[str, str]:
    sha = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if not sha:
        raise Abort(f"--ref {ref!r} is not a commit in {REPO}", 2)
    line = git("log", "-1", "--format=%h %s", sha)
    return sha, line if len(line) <= 72 else line[:71] + "…"


def side_env(src: Path, trace_dir: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(src)] + ([str(trace_dir)] if trace_dir else [])
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")  # so the streamed output is live
    return env


def within(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def probe(side: Side) -> None:
    """``import facegate`` under the side's environment must come from ``<side>/src``."""
    env = {k: v for k, v in side.env.items() if k != TRACE_ENV}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n    ".join(done.stderr.strip().splitlines()[-STDERR_TAIL:])
        raise Abort(f"{side.name} ({side.label}): `import facegate` fails (exit {done.returncode}):\n    {tail}", 1)
    where = done.stdout.strip().splitlines()[-1]
    if not within(where, side.root / "src"):
        raise Abort(
            f"{side.name}: `import facegate` resolves to {where}, not under {side.root / 'src'}; "
            f"the PYTHONPATH override does not work with this interpreter ({sys.executable})",
            2,
        )
    say(f"{side.name}: {side.label}; import facegate -> {where}")


def last_pairs(lines: list[str]) -> dict[str, str] | None:
    for line in reversed(lines):
        tokens = line.split()
        if tokens and all(PAIR.match(t) for t in tokens):
            return dict(t.split("=", 1) for t in tokens)
    return None


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, then SIGTERM, then SIGKILL to the run's process group (the bench and its children)."""
    for sig, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    # children left behind after the bench itself ended (a server it did not stop)
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return
    say(f"[before_after] killing what is left of process group {proc.pid}")
    os.killpg(proc.pid, signal.SIGKILL)


def run_once(side: Side, round_: int, args: list[str], timeout: float | None, trace_log: Path) -> Run:
    tag = f"[{side.name} r{round_}]"
    run = Run(side.name, round_)
    env = {**side.env, TRACE_ENV: str(trace_log)}
    cmd = [sys.executable, str(side.script), *args]
    say(f"{tag} $ {shlex.join(cmd)}")
    stdout: list[str] = []
    stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)

    def pump(stream, keep) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            keep.append(line)
            if keep is stderr and EXCEPTION.match(line) and line not in run.exceptions:
                run.exceptions.append(line)
            say(f"{tag} {line}")

    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group: stopped as a whole, with any server it started
    )
    pumps = [
        threading.Thread(target=pump, args=(s, k), daemon=True)
        for s, k in ((proc.stdout, stdout), (proc.stderr, stderr))
    ]
    for t in pumps:
        t.start()
    try:
        run.code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        run.problems.append(f"timed out after {timeout:g} s")
        stop(proc)
        run.code = proc.returncode
    except BaseException:  # Ctrl-C or SIGTERM: stop the run, then clean up
        stop(proc)
        raise
    for t in pumps:
        t.join(timeout=5)
    stop(proc)  # nothing of the run survives it
    run.seconds = time.perf_counter() - started
    run.stderr_tail = list(stderr)
    run.result = last_pairs(stdout)
    if run.code != 0:
        run.problems.append(f"exit code {run.code}")
    if run.result is None:
        run.problems.append("no `key=value` line on stdout")
    imports = trace_log.read_text().splitlines() if trace_log.exists() else []
    if not imports and run.code == 0:
        run.problems.append("no Python process of this run imported facegate (is it a facegate bench?)")
    for entry in imports:
        pid, origin, argv = [*entry.split("\t"), "", ""][:3]
        if not within(origin, side.root / "src"):
            run.problems.append(f"process {pid} ({argv}) imported facegate from {origin}, not {side.root / 'src'}")
    processes = len({e.split("\t", 1)[0] for e in imports})
    if run.ok:
        say(
            f"{tag} ok in {run.seconds:.1f} s; "
            f"facegate imported by {processes} process(es), all from {side.root / 'src'}"
        )
    else:
        say(f"{tag} FAILED after {run.seconds:.1f} s: " + "; ".join(run.problems))
    if not run.ok and run.stderr_tail:
        say(f"{tag} last {len(run.stderr_tail)} line(s) of stderr:")
        for line in run.stderr_tail:
            say(f"{tag}   | {line}")
    if not run.ok and run.exceptions:
        say(f"{tag} exceptions raised in this run (in order; the first is often the cause, maybe in a child):")
        for line in run.exceptions[:10]:
            say(f"{tag}   ! {line}")
    return run


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def fmt(value: float) -> str:
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(round(value, 6))


def ratio(after: float, before: float) -> float:
    if before == 0:
        return math.nan if after == 0 else math.copysign(math.inf, after)
    return after / before


def summary(values: list[str]) -> tuple[str, float | None]:
    """The median when every value is a number, else the distinct values as they are."""
    numbers = [number(v) for v in values]
    if values and None not in numbers:
        median = statistics.median(numbers)
        return (values[0] if len(set(values)) == 1 else fmt(median)), median
    return " ".join(dict.fromkeys(values)) or "-", None


def report(runs: list[Run]) -> None:
    keys: list[str] = []
    for run in runs:
        for key in run.result or {}:
            if key not in keys:
                keys.append(key)
    values = {
        (side, key): [r.result[key] for r in runs if r.side == side and r.ok and key in r.result]
        for side in ("before", "after")
        for key in keys
    }
    if not keys:
        say("no `key=value` results from any run")
        return
    rows = [("key", "before", "after", "after/before", "before per round", "after per round")]
    pairs: list[str] = []
    for key in keys:
        b, a = values["before", key], values["after", key]
        (bt, mb), (at, ma) = summary(b), summary(a)
        r = ratio(ma, mb) if mb is not None and ma is not None else None
        rows.append((key, bt, at, "-" if r is None else f"{r:.3f}", " ".join(b) or "-", " ".join(a) or "-"))
        pairs += [f"{key}_before={bt}"] if mb is not None else []
        pairs += [f"{key}_after={at}"] if ma is not None else []
        pairs += [f"{key}_ratio={r:.3f}"] if r is not None else []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for n, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(" ".join(pairs))


def make_worktree(tmp: Path, name: str, sha: str, worktrees: list[Path]) -> Path:
    path = tmp / name
    git("worktree", "add", "--detach", "--quiet", str(path), sha)
    worktrees.append(path)
    return path


def remove_worktrees(worktrees: list[Path]) -> None:
    for path in worktrees:
        git("worktree", "remove", "--force", str(path), check=False)
    git("worktree", "prune", check=False)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1 :]


def bench_path(arg: str) -> Path:
    path = Path(arg)
    path = (path if path.is_absolute() else Path.cwd() / path).resolve()
    if not within(path, REPO):
        raise Abort(f"{arg}: the bench script must be inside this repository ({REPO})", 2)
    return path.relative_to(REPO.resolve())


def main() -> int:
    own, bench = split_argv(sys.argv[1:])
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [--ref REF] [--rounds N] [--timeout S] [--after-ref REF2] -- SCRIPT [ARGS...]",
    )
    ap.add_argument("--ref", default="HEAD", help="commit for 'before' (default: HEAD)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per side, order alternating (default: 2)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per run (default: none)")
    ap.add_argument("--after-ref", default=None, help="commit for 'after' instead of the working tree")
    opts = ap.parse_args(own)
    if not bench:
        ap.error("give the bench script after `--`, e.g. -- bench/speed.py --repeat 100")
    if opts.rounds < 1:
        ap.error("--rounds must be at least 1")
    rel = bench_path(bench[0])

    worktrees: list[Path] = []
    tmp = Path(tempfile.mkdtemp(prefix="facegate-before-after-"))
    trace_dir = tmp / "trace"
    trace_dir.mkdir()
    (trace_dir / "sitecustomize.py").write_text(sitecustomize(existing_sitecustomize()))
    try:
        sha, subject = resolve_commit(opts.ref)
        before_root = make_worktree(tmp, "before", sha, worktrees)
        before = Side("before", f"{opts.ref} = {subject}", before_root, before_root / rel)
        if opts.after_ref:
            sha2, subject2 = resolve_commit(opts.after_ref)
            after_root = make_worktree(tmp, "after", sha2, worktrees)
            after = Side("after", f"{opts.after_ref} = {subject2}", after_root, after_root / rel)
        else:
            edits = len(git("status", "--porcelain", "--", "src", "bench").splitlines())
            head = git("log", "-1", "--format=%h", "HEAD")
            after = Side(
                "after", f"working tree (HEAD {head} + {edits} changed path(s) in src/ bench/)", REPO, REPO / rel
            )
        for side in (before, after):
            if not side.script.is_file():
                where = side.label if side.name == "before" or opts.after_ref else "the working tree"
                raise Abort(f"{rel} does not exist on the {side.name} side ({where})", 2)
            side.env = side_env(side.root / "src", trace_dir)
        for side in (before, after):
            probe(side)

        runs: list[Run] = []
        for n in range(1, opts.rounds + 1):
            order = (before, after) if n % 2 else (after, before)
            for side in order:
                runs.append(run_once(side, n, bench[1:], opts.timeout, tmp / f"imports-{side.name}-r{n}.log"))
        report(runs)
        failed = [f"{r.side} r{r.round}" for r in runs if not r.ok]
        if failed:
            say(f"failed run(s): {', '.join(failed)} (left out of the medians)")
            return 1
        return 0
    except Abort as e:
        say(f"before_after: {e}")
        return e.code
    except KeyboardInterrupt:
        say("before_after: interrupted")
        return 130
    finally:
        remove_worktrees(worktrees)
        shutil.rmtree(tmp, ignore_errors=True)


def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _sigterm)
    sys.exit(main())
