"""Attention heatmaps as PNG files (matplotlib's Agg canvas; no display, no global backend change).

`plot_attention(weights, source_pieces, target_pieces, path)` draws weights float[T, S] with the
source pieces on the x axis (left to right, as read) and the target pieces on the y axis (top to
bottom, as generated); each row is the attention distribution of one generated piece. SentencePiece
word-start marks (U+2581) are kept, so word boundaries stay visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from nmt.errors import UserError

CELL_INCHES = 0.32  # size of one heatmap cell
MAX_INCHES = 60.0  # cap for very long sentences
DPI = 100


def plot_attention(
    weights,
    source_pieces: Sequence[str],
    target_pieces: Sequence[str],
    path,
    title: Optional[str] = None,
) -> Path:
    """Writes one heatmap PNG; weights [len(target_pieces), len(source_pieces)] in [0, 1]. Returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weights = np.asarray(weights, dtype=np.float32)
    rows, cols = len(target_pieces), len(source_pieces)
    if weights.shape != (rows, cols):
        raise ValueError(f"attention weights of shape {weights.shape}, expected ({rows}, {cols}) (target x source pieces)")
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
    `Translator.translate_detailed(..., attention=True)`), with an `</s>` row when EOS was produced."""
    best = translation.hypotheses[0]
    targets = translator.target_pieces(best.tokens)
    if best.attention.shape[0] > len(targets):
        targets.append("</s>")
    return plot_attention(best.attention, translator.source_pieces(translation.source_ids), targets, path, title=title)
