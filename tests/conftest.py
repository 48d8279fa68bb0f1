"""Shared test fixtures.

Multi30k (raw Task 1 text) is found through the environment variable NMT_MULTI30K_DIR, by default
<repo>/../shared/data/multi30k; tests that need it are skipped with the reason when it is absent,
except under CI=true, where they fail (CI must not pass by skipping them).
SentencePiece models are trained once per session on a few thousand sentences with a small
vocabulary, so they take about a second each.
The two trained runs that many files read (translator_run, tiny_run) are made once per test
session, not once per worker: the first pytest-xdist worker that needs one makes it, the other
waits for it and reuses it (tests/helpers.py: build_once).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

MULTI30K_LANGS = ("en", "de", "fr", "cs")
CI = os.environ.get("CI", "").lower() == "true"


def multi30k_path() -> Path:
    return Path(os.environ.get("NMT_MULTI30K_DIR", str(REPO_ROOT.parent / "shared" / "data" / "multi30k")))


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    """The Multi30k Task 1 directory (train/val/test2016.{en,de,fr,cs}); skips if absent."""
    d = multi30k_path()
    missing = [f"{s}.{lang}" for s in ("train", "val") for lang in MULTI30K_LANGS if not (d / f"{s}.{lang}").is_file()]
    if missing:
        message = f"Multi30k not found at {d} (missing {missing[0]}); set NMT_MULTI30K_DIR to its directory"
        if CI:  # CI must not pass by skipping what it was meant to check
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return d


def _head(path: Path, n: int) -> list[str]:
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for line in f:
            out.append(line.rstrip("\n"))
            if len(out) >= n:
                break
    return out


@pytest.fixture(scope="session")
def multi30k_tokenizer_dir(multi30k_dir, tmp_path_factory) -> Path:
    """A joint unigram model (vocab 2000, byte fallback) trained on 1500 training lines per language."""
    from nmt.text.tokenizer import TokenizerConfig, train_tokenizers

    out = tmp_path_factory.mktemp("multi30k_tok")
    lines = {lang: _head(multi30k_dir / f"train.{lang}", 1500) for lang in MULTI30K_LANGS}
    # A joint model over all four languages: the "source" side gets en+fr, the "target" side de+cs.
    src = lines["en"] + lines["fr"]
    tgt = lines["de"] + lines["cs"]
    train_tokenizers(TokenizerConfig(vocab_size=2000, input_sentence_size=10_000, seed=0), src, tgt, out)
    return out


@pytest.fixture(scope="session")
def multi30k_tokenizers(multi30k_tokenizer_dir):
    from nmt.text.tokenizer import Tokenizers

    return Tokenizers.load(multi30k_tokenizer_dir)


@pytest.fixture(scope="session")
def numbers_corpus() -> dict:
    """A small built-in numbers corpus in memory: 3000 train, 100 dev, 100 test pairs."""
    from nmt.text import toy_corpus

    return toy_corpus.generate(seed=7, sizes={"train": 3000, "dev": 100, "test": 100})


@pytest.fixture(scope="session")
def numbers_tokenizer_dir(numbers_corpus, tmp_path_factory) -> Path:
    """A joint unigram model (vocab 400) trained on the small numbers corpus."""
    from nmt.text.tokenizer import TokenizerConfig, train_tokenizers

    out = tmp_path_factory.mktemp("numbers_tok")
    train = numbers_corpus["train"]
    train_tokenizers(TokenizerConfig(vocab_size=400), [s for s, _ in train], [t for _, t in train], out)
    return out


@pytest.fixture(scope="session")
def numbers_tokenizers(numbers_tokenizer_dir):
    from nmt.text.tokenizer import Tokenizers

    return Tokenizers.load(numbers_tokenizer_dir)


@pytest.fixture(scope="session")
def translator_run(tmp_path_factory) -> dict:
    """{"dir": the trained attention run of tests/helpers.py (make_run), "test": its test pairs};
    read only."""
    from tests import helpers

    return helpers.shared_run(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The run directory of train.py with the tiny config of tests/helpers.py (TINY); read only."""
    from tests import helpers

    return helpers.tiny_run(tmp_path_factory)


def pytest_collection_modifyitems(config, items):
    """Files holding slow tests first, each file's tests kept together and in their order.

    pytest-xdist (--dist loadfile, pytest.ini) hands out whole files in this order, to whichever
    worker runs out of work first: the long files start early and the many short ones fill in at
    the end, so neither worker is left with a long file when the other has finished."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
