"""The benchmark scripts run end to end at a tiny size and print their whole report.

These are smoke checks that the scripts still work against the current code; they never look at
a time (the machines are shared and noisy, and speed targets live in the scripts' own output).
Each script runs in a subprocess exactly as a user would start it, through its own options at their
smallest: a few sentences, steps and repeats, small batches, the first 3000 training pairs of
Multi30k, and the session's small Multi30k tokenizer instead of one trained on the whole corpus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def multi30k_slice(multi30k_dir, tmp_path_factory) -> Path:
    """A Multi30k directory holding the first 3000 training pairs and the whole val and test2016."""
    out = tmp_path_factory.mktemp("multi30k_slice")
    for lang in ("en", "de"):
        with open(multi30k_dir / f"train.{lang}", encoding="utf-8", newline="") as f:
            head = [line for _, line in zip(range(3000), f)]
        (out / f"train.{lang}").write_text("".join(head), encoding="utf-8", newline="")
        for split in ("val", "test2016"):
            shutil.copy(multi30k_dir / f"{split}.{lang}", out / f"{split}.{lang}")
    return out


def run_script(name: str, *args: str, env_extra: dict | None = None, timeout: int = 600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bench_gru_reports_every_contender_ratio_and_the_bf16_bound():
    proc = run_script(
        "bench_gru.py",
        "--batch",
        "2",
        "--length",
        "3",
        "--input",
        "4",
        "--units",
        "8",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--no-torch",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for name in ("nmt.model.gru.GRU", "keras GRU(reset_after=False)", "keras GRU(reset_after=True)"):
        for dtype in ("float32", "bfloat16"):
            for mode in ("graph", "xla"):
                assert any(
                    line.split()[-5:-3] == [dtype, mode] and line.startswith(name) for line in out.splitlines()
                ), f"no row for {name} {dtype} {mode}:\n{out}"
    assert "2048^3 float32 matmul" in out and "2048^3 bfloat16 matmul" in out
    assert "vs torch.nn.GRU" not in out  # --no-torch
    if "oneDNN GRU primitives: not available" not in out:
        # oneDNN's fused vanilla_gru, an independent implementation of the same equations, computed
        # nmt.model.gru.GRU's output sequence on the same inputs and weights before its time was shown.
        assert "max |difference|" in out and "(the same function)" in out, out
        assert "float32   vs oneDNN vanilla_gru (fused)" in out
    assert "target <= 0.6" in out and "target < 1.0" in out
    # the verdicts come from interleaved rounds (--rounds 7 by default; torch.nn.GRU left out here)
    rounds = [line for line in out.splitlines() if line.startswith("  round ")]
    assert [line.split(":")[0] for line in rounds] == [f"  round {i}" for i in range(1, 8)], out
    assert all("float32 " in line and "bfloat16 " in line and "torch" not in line for line in rounds), rounds
    assert "bfloat16 speed-up over float32: median " in out and " over 7 rounds (" in out
    assert "hardware bound: bfloat16 matmul" in out and "CPU bfloat16 instructions:" in out
    assert "the layer's matmuls alone at its own shapes (graph): float32 " in out
    # GRU against LSTM: parameters counted from the weights; input 4, units 8
    lstm_section = out.split("GRU against LSTM", 1)[1]
    rows = {
        line.split("  ")[1].strip(): line
        for line in lstm_section.splitlines()
        if line.startswith("  ") and "ms" not in line
    }
    gru_params, lstm_params = 3 * 8 * (4 + 8) + 3 * 8, 4 * 8 * (4 + 8) + 4 * 8  # W·[h, x] + b per gate
    assert f" {gru_params:,} " in rows["nmt.model.gru.GRU"] and f" {lstm_params:,} " in rows["keras LSTM"], lstm_section
    assert f"keras LSTM / nmt.model.gru.GRU: parameters {lstm_params / gru_params:.2f}x, time float32 " in lstm_section


def test_bench_gru_rejects_a_bad_option_in_one_line():
    proc = run_script("bench_gru.py", "--units", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("--units must be positive; received 0")
    assert "Traceback" not in proc.stderr
    proc = run_script("bench_gru.py", "--dtypes", "float16")
    assert proc.returncode == 2 and "received 'float16'" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_translate_runs(multi30k_dir):
    proc = run_script(
        "bench_translate.py",
        "--data",
        str(multi30k_dir),
        "--sentences",
        "8",
        "--repeats",
        "1",
        "--beams",
        "1,2",
        "--no-xla",
        "--no-savedmodel",
        "--no-flops",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "in-process, beam 1" in proc.stdout and "in-process, beam 2" in proc.stdout
    assert "sentences/s" in proc.stdout


def test_bench_train_runs(multi30k_slice, multi30k_tokenizer_dir, tmp_path):
    # The tokenizer cache of --work-dir filled with the session's small tokenizer: the config's
    # vocabulary (8000) needs more text than the slice holds.
    shutil.copytree(multi30k_tokenizer_dir, tmp_path / "tokenizer")
    proc = run_script(
        "bench_train.py",
        "--data",
        str(multi30k_slice),
        "--steps",
        "2",
        "--warmup",
        "1",
        "--variants",
        "float32",
        "--work-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("float32 ")]
    assert rows and len(rows[0]) == 6, proc.stdout  # variant, tok/s, sent/s, ms/step, warm-up s, RSS MB
    assert "goal >= 2,300 tok/s" in proc.stdout


def test_bench_data_runs(multi30k_slice, multi30k_tokenizer_dir):
    proc = run_script(
        "bench_data.py",
        "--corpus",
        str(multi30k_slice),
        "--tokenizer-dir",
        str(multi30k_tokenizer_dir),
        "--batch-tokens",
        "512",
        "--epochs",
        "1",
        "--train-steps",
        "2",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pipeline epoch 1:" in proc.stdout and "training stream (make_training_stream)" in proc.stdout
    assert "headroom" in proc.stdout


def test_bench_systems_compares_a_run_its_average_and_an_ensemble(tiny_run):
    proc = run_script(
        "bench_systems.py",
        str(tiny_run),
        f"{tiny_run}@average",
        f"{tiny_run}+{tiny_run}",
        "--sentences",
        "4",
        "--repeats",
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == [
        f"`{tiny_run}`",
        f"`{tiny_run}@average`",
        f"`{tiny_run}+{tiny_run}`",
    ]
    # an ensemble of a model with itself translates as the model alone: the same BLEU and chrF
    cells = [[cell.strip() for cell in row.split("|")[2:7]] for row in rows]
    assert cells[0] == cells[2], cells
    missing = run_script("bench_systems.py", f"{tiny_run}@7")
    assert missing.returncode == 2 and missing.stderr.startswith(
        f"error: system {tiny_run}@7: checkpoint 7: no checkpoint"
    )


def test_bench_serve_reports_one_client_many_clients_and_translate_py(translator_run, tmp_path):
    source = tmp_path / "source.en"
    source.write_text("".join(s + "\n" for s, _ in translator_run["test"][:30]), encoding="utf-8")
    proc = run_script(
        "bench_serve.py",
        "--model",
        str(translator_run["dir"]),
        "--input",
        str(source),
        "--sentences",
        "40",  # more than the file: its lines again
        "--clients",
        "4",
        "--request-size",
        "3",
        "--repeats",
        "1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    for name in (
        "translate.py --input FILE (in process, model loaded)",
        "nmt serve, 1 client",
        "nmt serve, 4 concurrent clients",
    ):
        assert name in rows, proc.stdout
    cells = [cell.strip() for cell in rows["nmt serve, 1 client"].split("|")[1:-1]]
    assert cells[3] == "14" and int(cells[5]) == 14, cells  # 14 requests (13 of 3, 1 of 1), one call each
    assert "4 clients / 1 client: " in proc.stdout and "4 clients / translate.py: " in proc.stdout
    assert "1 client / translate.py: " in proc.stdout


def test_bench_serve_rejects_a_bad_option_in_one_line(tmp_path):
    proc = run_script("bench_serve.py", "--model", str(tmp_path), "--clients", "0")
    assert proc.returncode == 2 and proc.stderr == "error: --clients: received 0, expected a positive integer\n"
    proc = run_script("bench_serve.py", "--model", str(tmp_path / "none"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: --model {tmp_path / 'none'}: no such run")
