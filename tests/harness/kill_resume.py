#!/usr/bin/env python
"""Kill a training run with SIGKILL at random moments, resume it each time, and compare its final
weights with an uninterrupted run's (same config, same seed).

    python tests/harness/kill_resume.py                         # the toy config, 5 kills
    python tests/harness/kill_resume.py --kills 3 --set train.max_steps=60 --set train.checkpoint_every=10 ...

1. train.py runs the config uninterrupted (RUN/uninterrupted).
2. The same config runs in RUN/killed and is killed with SIGKILL `--kills` times, each time at a random
   training step (uniform over the run, sorted), a random 0-300 ms after that step was logged; one of
   the kills lands while a checkpoint is being written: the script watches the checkpoints folder
   and kills the moment the temporary directory of a checkpoint appears (preferably one that saves
   a step again, the case that once deleted the checkpoint last.json named), and checks that the
   temporary directory was still there after the kill. After each kill train.py --resume runs again
   (it must not fail); after the last kill it runs to the end.
3. The last checkpoints' weights (model and optimizer variables) of the two runs are compared; so
   are the per-step losses. Any difference above --tolerance fails (exit status 1).

Prints one line per kill and a summary; exit status 0 when every resume succeeded and the weights
agree.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from nmt.errors import ArgumentParser  # noqa: E402

TEMP_CHECKPOINT = re.compile(r"^\.ckpt-(\d+)(\.\d+)?\.")
RESAVE = re.compile(r"^\.ckpt-\d+\.\d+\.")


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--config", default=str(REPO_ROOT / "configs" / "toy.yaml"), help="training config (default: configs/toy.yaml)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override (repeatable)",
    )
    p.add_argument(
        "--kills", type=int, default=5, help="SIGKILLs at random moments (default 5; one while a checkpoint is written)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    p.add_argument("--work-dir", help="where the two runs go (default: a temporary directory, removed at the end)")
    p.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest weight or loss difference accepted (default 1e-6)"
    )
    p.add_argument(
        "--timeout", type=float, default=3600, help="seconds any one train.py process may take (default 3600)"
    )
    args = p.parse_args(argv)
    if args.kills < 1:
        p.error(f"--kills: expected at least 1, got {args.kills}")
    return args


def train_cmd(args, run_dir: Path, resume: bool) -> list:
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), "--config", args.config, "--run-dir", str(run_dir)]
    for override in args.overrides:
        cmd += ["--set", override]
    return cmd + (["--resume"] if resume else [])


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def logged_steps(run_dir: Path) -> dict:
    path = run_dir / "logs" / "steps.tsv"
    losses = {}
    try:
        with open(path, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                try:
                    losses[int(row["step"])] = float(row["loss"])
                except (TypeError, ValueError, KeyError):
                    pass  # a row being written
    except FileNotFoundError:
        pass
    return losses


def last_step(run_dir: Path) -> int:
    return max(logged_steps(run_dir) or [0])


def temp_checkpoints(run_dir: Path, pattern=TEMP_CHECKPOINT) -> list:
    try:
        return [name for name in os.listdir(run_dir / "checkpoints") if pattern.match(name)]
    except FileNotFoundError:
        return []


def start(args, run_dir: Path, log) -> subprocess.Popen:
    resume = (run_dir / "config.yaml").is_file()
    return subprocess.Popen(
        train_cmd(args, run_dir, resume), cwd=REPO_ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=log
    )


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def failed(proc, log_path: Path, what: str) -> SystemExit:
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
    return SystemExit(f"error: {what}: train.py exited with status {proc.returncode}: {' | '.join(tail)}")


def kill_at_step(args, run_dir: Path, target: int, delay: float, log_path: Path) -> str:
    """Starts (or resumes) the run and SIGKILLs it `delay` seconds after step `target` is logged."""
    with open(log_path, "a", encoding="utf-8") as log:
        proc = start(args, run_dir, log)
    deadline = time.monotonic() + args.timeout
    while last_step(run_dir) < target:
        if proc.poll() is not None:
            if proc.returncode != 0:
                raise failed(proc, log_path, "a resume")
            return f"finished before step {target} (not killed)"
        if time.monotonic() > deadline:
            kill(proc)
            raise SystemExit(f"error: training did not reach step {target} in {args.timeout:g} s")
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        if proc.returncode != 0:
            raise failed(proc, log_path, "a resume")
        return "finished before the kill"
    kill(proc)
    return f"killed at step {last_step(run_dir)} ({delay * 1000:.0f} ms after step {target} was logged)"


def kill_in_checkpoint_window(args, run_dir: Path, after: int, log_path: Path) -> str:
    """Starts (or resumes) the run and SIGKILLs it while a checkpoint directory is being written, at
    the first save after step `after` (a second save of a step, ckpt-<step>.<n>, or a new one)."""
    with open(log_path, "a", encoding="utf-8") as log:
        proc = start(args, run_dir, log)
    deadline = time.monotonic() + args.timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            step = last_step(run_dir)
            chosen = temp_checkpoints(run_dir) if step >= after else []
            if chosen:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                still = [name for name in chosen if (run_dir / "checkpoints" / name).exists()]
                if still:
                    kind = "a second save of the same step" if RESAVE.match(still[0]) else "a checkpoint"
                    return f"killed at step {step} while {kind} was written ({still[0]} left behind)"
                return "retry"  # the save completed between seeing it and the kill
            time.sleep(0.0005)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            kill(proc)
    if proc.returncode not in (0, None):
        raise failed(proc, log_path, "a resume")
    return "finished before a checkpoint could be caught"


def weights(run_dir: Path) -> dict:
    import h5py

    pointer = json.loads((run_dir / "checkpoints" / "last.json").read_text(encoding="utf-8"))
    out = {}
    with h5py.File(run_dir / "checkpoints" / pointer["dir"] / "weights.weights.h5", "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="kill_resume."))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    try:
        whole, killed = work / "uninterrupted", work / "killed"
        for d in (whole, killed):
            shutil.rmtree(d, ignore_errors=True)
        started = time.monotonic()
        with open(work / "uninterrupted.log", "w", encoding="utf-8") as log:
            proc = subprocess.run(
                train_cmd(args, whole, False),
                cwd=REPO_ROOT,
                env=env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
                timeout=args.timeout,
            )
        if proc.returncode != 0:
            raise failed(proc, work / "uninterrupted.log", "the uninterrupted run")
        want = logged_steps(whole)
        total = max(want)
        print(f"uninterrupted: {total:,} steps in {time.monotonic() - started:.0f} s")

        targets = sorted(rng.sample(range(1, total), min(args.kills, total - 1)))
        window = rng.randrange(len(targets))  # which kill waits for a checkpoint being written
        log_path = work / "killed.log"
        caught_window = False
        for i, target in enumerate(targets):
            if i == window:
                outcome = "retry"
                while outcome == "retry":
                    outcome = kill_in_checkpoint_window(args, killed, target, log_path)
                caught_window = "while" in outcome
            else:
                outcome = kill_at_step(args, killed, target, rng.uniform(0.0, 0.3), log_path)
            print(f"kill {i + 1}/{len(targets)}: {outcome}")
        with open(log_path, "a", encoding="utf-8") as log:
            proc = start(args, killed, log)
            proc.wait(timeout=args.timeout)
        if proc.returncode != 0:
            raise failed(proc, log_path, "the final resume")
        print("final resume: completed")

        got = logged_steps(killed)
        if sorted(got) != sorted(want):
            raise SystemExit(
                f"error: the killed run logged steps {min(got)}..{max(got)} ({len(got)}), the uninterrupted one "
                f"1..{total}"
            )
        loss_diff = max(abs(got[s] - want[s]) for s in want)
        a, b = weights(whole), weights(killed)
        if sorted(a) != sorted(b):
            raise SystemExit("error: the two runs' checkpoints hold different variables")
        weight_diff = max(
            float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) if a[k].size else 0.0 for k in a
        )
        print(f"losses of {total:,} steps: max |difference| {loss_diff:.3g}")
        print(f"final weights ({len(a)} arrays, model and optimizer): max |difference| {weight_diff:.3g}")
        ok = loss_diff <= args.tolerance and weight_diff <= args.tolerance and caught_window
        if not caught_window:
            print("error: no kill landed while a checkpoint was written", file=sys.stderr)
        print(
            "result: " + ("every resume succeeded; the final weights equal the uninterrupted run's" if ok else "FAILED")
        )
        return 0 if ok else 1
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
