"""Corpus BLEU and chrF with sacrebleu's metric objects: the single scoring path of the project.

Training's dev BLEU and ``scripts/evaluate.py`` both call :func:`score`, so every reported number comes with
its sacrebleu signature and equals what the ``sacrebleu`` command line prints for the same files (metric
objects built with the command line's defaults, references cached in the metric as the command line does).
:func:`paired_bootstrap` compares two systems with sacrebleu's own paired bootstrap resampling
(``sacrebleu.significance.PairedTest``, the code behind ``sacrebleu --paired-bs``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from nmt.errors import UserError
from nmt.text import textfile

METRICS = {"bleu": BLEU, "chrf": CHRF}
DEFAULT_METRICS = ("bleu", "chrf")
DEFAULT_SEED = 12345  # sacrebleu's default seed for resampling (SACREBLEU_SEED)

References = Sequence[str] | Sequence[Sequence[str]]


# ------------------------------------------------------------------------------------------------------ reading


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a hypothesis or reference file as the sacrebleu command line reads them: split on LF only,
    trailing whitespace removed, a BOM kept, a final line without LF counted (`nmt.text.textfile.SACREBLEU`; gzip
    detected from the content). A missing/unreadable file or bad UTF-8 is a one-line UserError naming the file
    (and the line and byte)."""
    return list(textfile.read_lines(path, textfile.SACREBLEU))


# ------------------------------------------------------------------------------------------------------ scoring


def reference_streams(hypotheses: Sequence[str], references: References) -> list[list[str]]:
    """Normalizes references to sacrebleu's streams [[ref 1 of every sentence], [ref 2 ...], ...] and checks counts.

    ``references`` is either one reference per hypothesis (list[str]) or a list of such streams.
    """
    if isinstance(references, str):
        raise UserError("references: expected a list of strings (or a list of lists), got a single string")
    references = list(references)
    if all(isinstance(reference, str) for reference in references):
        streams = [references]  # one reference per sentence (also the empty corpus)
    else:
        streams = [[stream] if isinstance(stream, str) else list(stream) for stream in references]
    for number, stream in enumerate(streams, 1):
        if len(stream) != len(hypotheses):
            which = f" (reference set {number} of {len(streams)})" if len(streams) > 1 else ""
            raise UserError(
                f"hypotheses and references differ in count: {len(hypotheses)} hypotheses, "
                f"{len(stream)} references{which}"
            )
    return streams


def make_metrics(
    metrics: Sequence[str] = DEFAULT_METRICS,
    references=None,
    bleu_tokenize: str | None = None,
    lowercase: bool = False,
):
    """{"bleu": BLEU(...), "chrf": CHRF(...)} with the sacrebleu command line's defaults.

    references: reference streams to cache in the metrics (as the command line does), or None.
    lowercase: case-insensitive BLEU (``sacrebleu -lc``: BLEU only, signature ``case:lc``; chrF stays cased).
    """
    built = {}
    for name in metrics:
        key = str(name).lower()
        if key not in METRICS:
            raise UserError(f"metric {name!r}: expected one of {', '.join(METRICS)}")
        options = {"tokenize": bleu_tokenize, "lowercase": lowercase} if key == "bleu" else {}
        try:
            built[key] = METRICS[key](references=references, **options)
        except Exception as error:  # sacrebleu rejects a bad tokenizer name with a plain exception
            raise UserError(f"metric {name!r}: {' '.join(str(error).split())}") from None
    if not built:
        raise UserError("metrics: expected at least one of bleu, chrf, got none")
    return built


@dataclass(frozen=True)
class Scores:
    """Corpus scores: ``results`` maps "bleu"/"chrf" to sacrebleu Score objects, ``signatures`` to their strings."""

    results: dict[str, Any]
    signatures: dict[str, str]

    @property
    def bleu(self) -> float | None:
        return self.results["bleu"].score if "bleu" in self.results else None

    @property
    def chrf(self) -> float | None:
        return self.results["chrf"].score if "chrf" in self.results else None

    def format(self, width: int = 2) -> str:
        """One line per metric, e.g. ``BLEU = 34.50 65.1/40.2/27.0/18.3 (BP = ...)  nrefs:1|case:mixed|...``."""
        return "\n".join(
            f"{result.format(width=width)}  {self.signatures[name]}" for name, result in self.results.items()
        )

    def as_dict(self, width: int = 2) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "name": result.name,
                "score": result.score,
                "line": result.format(width=width),
                "signature": self.signatures[name],
            }
            for name, result in self.results.items()
        }


def score(
    hypotheses: Sequence[str],
    references: References,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    bleu_tokenize: str | None = None,
    lowercase: bool = False,
) -> Scores:
    """Corpus BLEU/chrF of hypotheses (one string per sentence) against one or more references per sentence.

    references: list[str] (one reference each) or list of reference streams (each a list[str] as long as
    hypotheses). bleu_tokenize: sacrebleu tokenizer name (default: sacrebleu's, "13a"). lowercase: BLEU
    ignores case (``sacrebleu -lc``).
    """
    hypotheses = list(hypotheses)
    streams = reference_streams(hypotheses, references)
    if not hypotheses:
        raise UserError("hypotheses: expected at least one sentence to score, got none")
    objects = make_metrics(metrics, references=streams, bleu_tokenize=bleu_tokenize, lowercase=lowercase)
    results = {name: metric.corpus_score(hypotheses, None) for name, metric in objects.items()}
    signatures = {name: metric.get_signature().format() for name, metric in objects.items()}
    return Scores(results=results, signatures=signatures)


# ----------------------------------------------------------------------------------------- paired significance


@dataclass(frozen=True)
class PairedMetric:
    """One metric of a paired bootstrap test (sacrebleu's numbers; mean and ci are the bootstrap estimates)."""

    name: str
    baseline: float
    baseline_mean: float
    baseline_ci: float
    system: float
    system_mean: float
    system_ci: float
    p_value: float
    signature: str


@dataclass(frozen=True)
class PairedComparison:
    baseline_name: str
    system_name: str
    n_samples: int
    seed: int | None
    metrics: dict[str, PairedMetric] = field(default_factory=dict)

    def format(self, width: int = 2, alpha: float = 0.05) -> str:
        seed = "none" if self.seed is None else self.seed
        lines = [
            f"Paired bootstrap resampling (sacrebleu), {self.n_samples} resamples, seed {seed}",
            f"baseline: {self.baseline_name}",
            f"system:   {self.system_name}",
        ]
        for result in self.metrics.values():
            mark = "significant" if result.p_value < alpha else "not significant"
            lines.append(
                f"{result.name}: baseline {result.baseline:.{width}f} (μ = {result.baseline_mean:.{width}f} ± "
                f"{result.baseline_ci:.{width}f})  system {result.system:.{width}f} (μ = "
                f"{result.system_mean:.{width}f} ± "
                f"{result.system_ci:.{width}f})  p = {result.p_value:.4f} ({mark} at {alpha})  {result.signature}"
            )
        return "\n".join(lines)


@contextlib.contextmanager
def _sacrebleu_seed(seed: int | None):
    """sacrebleu reads its resampling seed from SACREBLEU_SEED ("none": unseeded); set it for the block only."""
    saved = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = "none" if seed is None else str(int(seed))
    try:
        yield
    finally:
        if saved is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = saved


def paired_bootstrap(
    baseline: Sequence[str],
    system: Sequence[str],
    references: References,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    n_samples: int = 1000,
    seed: int | None = DEFAULT_SEED,
    names: Sequence[str] = ("baseline", "system"),
    bleu_tokenize: str | None = None,
    lowercase: bool = False,
) -> PairedComparison:
    """sacrebleu's paired bootstrap resampling test of ``system`` against ``baseline`` (``sacrebleu --paired-bs``).

    Same numbers as ``SACREBLEU_SEED=<seed> sacrebleu REF -i BASELINE SYSTEM --paired-bs --paired-bs-n N``.
    p_value: probability of a score difference at least as large under the null hypothesis (sacrebleu's
    definition). seed None (or 0, which sacrebleu treats alike) draws fresh entropy.
    """
    baseline, system = list(baseline), list(system)
    if len(baseline) != len(system):
        raise UserError(
            f"the two systems differ in count: {len(baseline)} baseline hypotheses, {len(system)} system hypotheses"
        )
    if n_samples < 1:
        raise UserError(f"bootstrap resamples: expected an integer >= 1, got {n_samples}")
    streams = reference_streams(baseline, references)
    if not baseline:
        raise UserError("hypotheses: expected at least one sentence to score, got none")
    with _sacrebleu_seed(seed):
        objects = make_metrics(metrics, references=streams, bleu_tokenize=bleu_tokenize, lowercase=lowercase)
        test = PairedTest(
            [(names[0], baseline), (names[1], system)],
            {name.upper(): metric for name, metric in objects.items()},
            references=None,
            test_type="bs",
            n_samples=n_samples,
        )
        signatures, results = test()
    compared = {}
    for key, (name, metric) in zip(objects, ((n, r) for n, r in results.items() if n != "System")):
        base, other = metric
        compared[key] = PairedMetric(
            name=name,
            baseline=base.score,
            baseline_mean=float(base.mean),
            baseline_ci=float(base.ci),
            system=other.score,
            system_mean=float(other.mean),
            system_ci=float(other.ci),
            p_value=float(other.p_value),
            signature=signatures[name].format(),
        )
    return PairedComparison(names[0], names[1], n_samples, None if not seed else int(seed), compared)
