"""Pictures as PNG files (matplotlib's Agg canvas; no display, no global backend change): attention
heatmaps and the curves of training runs.

`plot_attention(weights, source_pieces, target_pieces, path)` draws weights float[T, S] with the
source pieces on the x axis (left to right, as read) and the target pieces on the y axis (top to
bottom, as generated); each row is the attention distribution of one generated piece. SentencePiece
word-start marks (U+2581) are kept, so word boundaries stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nmt.errors import UserError
from nmt.files import AtomicFile

CELL_INCHES = 0.32  # size of one heatmap cell
MAX_INCHES = 60.0  # cap for very long sentences
DPI = 100


def plot_attention(
    weights,
    source_pieces: Sequence[str],
    target_pieces: Sequence[str],
    path,
    title: str | None = None,
) -> Path:
    """Writes one heatmap PNG; weights [len(target_pieces), len(source_pieces)] in [0, 1]. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = np.asarray(weights, dtype=np.float32)
    rows, cols = len(target_pieces), len(source_pieces)
    if weights.shape != (rows, cols):
        raise ValueError(
            f"attention weights of shape {weights.shape}, expected ({rows}, {cols}) (target x source pieces)"
        )
    longest_x = max((len(p) for p in source_pieces), default=1)
    longest_y = max((len(p) for p in target_pieces), default=1)
    width = min(MAX_INCHES, max(4.0, cols * CELL_INCHES + 0.09 * longest_y + 2.2))
    height = min(MAX_INCHES, max(3.0, rows * CELL_INCHES + 0.09 * longest_x + 1.6))
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    axes.set_xticks(np.arange(cols))
    axes.set_xticklabels(list(source_pieces), rotation=90, fontsize=9)
    axes.set_yticks(np.arange(rows))
    axes.set_yticklabels(list(target_pieces), fontsize=9)
    axes.xaxis.tick_top()
    axes.xaxis.set_label_position("top")
    axes.set_xlabel("source pieces")
    axes.set_ylabel("target pieces")
    if title:
        figure.suptitle(title, fontsize=9, y=0.995, va="top")
    figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02, label="attention weight")
    figure.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
    except OSError as error:
        raise UserError(f"{path}: cannot write the attention plot ({error.strerror or error})") from None
    return path


def plot_translation(translator, translation, path, title: str = ""):
    """The attention heatmap of a translation's best hypothesis (from
    `Translator.translate(..., translator.settings(attention=True))`), with an `</s>` row when EOS was produced."""
    best = translation.hypotheses[0]
    targets = translator.target_pieces(best.tokens)
    if best.attention.shape[0] > len(targets):
        targets.append("</s>")
    return plot_attention(best.attention, translator.source_pieces(translation.source_ids), targets, path, title=title)


# ------------------------------------------------------------------------------------------- run curves


def _log_file(run_dir: Path, name: str) -> Path:
    """RUN_DIR/logs/NAME, or RUN_DIR/NAME where only that exists: the run files kept beside the
    results (docs/results/RUN/config.yaml and train.csv) are plotted like a run directory."""
    nested = run_dir / "logs" / name
    return run_dir / name if not nested.is_file() and (run_dir / name).is_file() else nested


def _read_table(path: Path, delimiter: str) -> list[dict]:
    import csv

    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _column(rows: list[dict], x: str, y: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        try:
            a, b = float(row[x]), float(row[y])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(a) and np.isfinite(b):
            xs.append(a)
            ys.append(b)
    return xs, ys


def _smooth(values: list[float], window: int) -> np.ndarray:
    """A trailing moving average (the per-step loss is noisy); the first points average what there is."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.minimum(np.arange(1, len(v) + 1), window)
    return (c[np.arange(1, len(v) + 1)] - c[np.arange(1, len(v) + 1) - n]) / n


def _with_steps(rows: list[dict], run_dir: Path) -> list[dict]:
    """Epoch rows with a ``step`` column. Runs logged before train.csv had one get it from the steps per
    epoch their checkpoints record (epoch e ends at step (e + 1) * steps_per_epoch)."""
    if not rows or "step" in rows[0]:
        return rows
    import json

    try:
        pointer = json.loads((run_dir / "checkpoints" / "last.json").read_text(encoding="utf-8"))
        state = json.loads((run_dir / "checkpoints" / pointer["dir"] / "state.json").read_text(encoding="utf-8"))
        per_epoch = int(state["steps_per_epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return rows
    return [dict(row, step=str((int(row["epoch"]) + 1) * per_epoch)) for row in rows if row.get("epoch", "").isdigit()]


def plot_runs(run_dirs: Sequence, path, labels: Sequence[str] | None = None) -> Path:
    """Writes one PNG with the curves of one or more run directories (their logs/steps.tsv and
    logs/train.csv; or train.csv alone, as kept in docs/results/RUN/): training loss (smoothed; the
    epoch means without steps.tsv) and dev loss against steps, dev BLEU against steps and against
    wall-clock minutes, and the learning rate against steps. Runs are labelled by name (labels, or
    each directory's name). Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run_dirs = [Path(d) for d in run_dirs]
    labels = list(labels) if labels is not None else [d.name for d in run_dirs]
    fig = Figure(figsize=(13, 8.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    (loss_ax, lr_ax), (bleu_steps_ax, bleu_time_ax) = fig.subplots(2, 2)
    found = False
    for i, (run_dir, label) in enumerate(zip(run_dirs, labels)):
        color = f"C{i % 10}"
        steps = _read_table(_log_file(run_dir, "steps.tsv"), "\t")
        epochs = _with_steps(_read_table(_log_file(run_dir, "train.csv"), ","), run_dir)
        found = found or bool(steps or epochs)
        x, y = _column(steps, "step", "loss")
        if x:
            loss_ax.plot(x, _smooth(y, max(1, len(y) // 100)), color=color, lw=1.2, label=f"{label}: train")
        else:  # no per-step log kept: the epochs' mean training loss
            x, y = _column(epochs, "step", "loss")
            if x:
                loss_ax.plot(x, y, "s-", color=color, ms=4, lw=1.2, label=f"{label}: train (epoch mean)")
        x, y = _column(epochs, "step", "val_loss")
        if x:
            loss_ax.plot(x, y, "o--", color=color, ms=4, lw=1, label=f"{label}: dev")
        x, y = _column(steps, "step", "learning_rate")
        if x:
            lr_ax.plot(x, y, color=color, lw=1.2, label=label)
        else:
            x, y = _column(epochs, "step", "learning_rate")
            if x:
                lr_ax.plot(x, y, "o-", color=color, ms=4, lw=1.2, label=f"{label} (at epoch ends)")
        x, y = _column(epochs, "step", "val_bleu")
        if x:
            bleu_steps_ax.plot(x, y, "o-", color=color, ms=4, label=label)
        x, y = _column(epochs, "minutes", "val_bleu")
        if x:
            bleu_time_ax.plot(x, y, "o-", color=color, ms=4, label=label)
    if not found:
        raise UserError(f"no training logs (logs/steps.tsv, logs/train.csv) in {', '.join(map(str, run_dirs))}")
    for ax, title, xlabel, ylabel in (
        (loss_ax, "loss (training: moving average of steps; dev: each epoch)", "step", "cross-entropy"),
        (lr_ax, "learning rate", "step", "learning rate"),
        (bleu_steps_ax, "dev BLEU against steps", "step", "BLEU"),
        (bleu_time_ax, "dev BLEU against wall-clock time", "minutes of training", "BLEU"),
    ):
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)
        if ax.lines:
            ax.legend(fontsize=8, loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path, binary=True) as f:
        fig.savefig(f.file, format="png")
    return path
