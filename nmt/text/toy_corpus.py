"""The built-in corpus: English number words to German number words, generated, no download.

Each pair is a short English sentence holding one or two numbers between 0 and 999,999 written
out in words, and its German translation::

    The number is three hundred forty-two.  ->  Die Zahl ist dreihundertzweiundvierzig.
    We know that seventy is greater than sixteen.  ->  Wir wissen, dass siebzig größer als sechzehn ist.
    twenty-one thousand one  ->  einundzwanzigtausendeins

German writes numbers below a million as one word with the units before the tens ("vierundzwanzig",
twenty-four), so the model must reorder inside a word; the "dass" clauses also move the verb to the
end. The short sentence frames matter for evaluation: a bare number is a single German token, and
BLEU over one-token sentences has no 2- to 4-grams, so it would say little; in the frames BLEU
mostly measures whether the number words are right.

Orthography (the choices where German allows two forms are fixed as follows):

* 1 alone or at the end is "eins" (einhunderteins = 101, eintausendeins = 1001); inside a compound
  it is "ein" (einundzwanzig, einhundert, eintausend, einundzwanzigtausend, einhunderteintausend);
* 100 and 1000 are always "einhundert" and "eintausend" (never the shorter "hundert", "tausend");
* tens and units are joined by "und" (zweiundvierzig); no "und" after hundert/tausend
  (dreihundertzwei); 16, 17, 60, 70 are "sechzehn", "siebzehn", "sechzig", "siebzig"; 30 is
  "dreißig" (with ß); 0 is "null";
* English uses American style: no "and" (three hundred two), hyphenated tens (forty-two).

Numbers are drawn log-uniformly: first the number of digits (1 to 6), then the number. Pairs are
unique across the whole corpus: no English sentence appears twice, so train, dev and test are
disjoint. Everything is a pure function of the seed and the sizes (Python's `random.Random`).
Default sizes: 30,000 train, 500 dev, 500 test pairs (about 4.3 MB of text); ``max_digits`` (1 to
6, default 6) makes an easier corpus with smaller numbers.
"""

from __future__ import annotations

import random
from pathlib import Path

from nmt.errors import UserError
from nmt.files import AtomicFile

MAX_NUMBER = 999_999
DEFAULT_SEED = 1
DEFAULT_SIZES = {"train": 30_000, "dev": 500, "test": 500}
SRC_LANG, TGT_LANG = "en", "de"

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

# German units as they appear inside a compound ("ein" for 1) and tens.
_DE_ONES = (
    "null ein zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn "
    "fünfzehn sechzehn siebzehn achtzehn neunzehn"
).split()
_DE_TENS = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()


def _check(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"expected an integer from 0 to {MAX_NUMBER}, got {n!r}")


def _en_below_100(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    tens, units = divmod(n, 10)
    return _EN_TENS[tens] + (f"-{_EN_ONES[units]}" if units else "")


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_EN_ONES[hundreds]} hundred"] if hundreds else []
    if rest:
        words.append(_en_below_100(rest))
    return " ".join(words)


def english(n: int) -> str:
    """``342`` -> ``"three hundred forty-two"`` (0 to 999,999)."""
    _check(n)
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    words = [f"{_en_below_1000(thousands)} thousand"] if thousands else []
    if rest:
        words.append(_en_below_1000(rest))
    return " ".join(words)


def _de_below_100(n: int, final: bool) -> str:
    if n == 1:
        return "eins" if final else "ein"
    if n < 20:
        return _DE_ONES[n]
    tens, units = divmod(n, 10)
    if units == 0:
        return _DE_TENS[tens]
    return f"{_DE_ONES[units]}und{_DE_TENS[tens]}"


def _de_below_1000(n: int, final: bool) -> str:
    hundreds, rest = divmod(n, 100)
    word = f"{_DE_ONES[hundreds]}hundert" if hundreds else ""
    if rest:
        word += _de_below_100(rest, final)
    return word


def german(n: int) -> str:
    """``342`` -> ``"dreihundertzweiundvierzig"`` (0 to 999,999, one word)."""
    _check(n)
    if n == 0:
        return "null"
    thousands, rest = divmod(n, 1000)
    word = f"{_de_below_1000(thousands, final=False)}tausend" if thousands else ""
    if rest:
        word += _de_below_1000(rest, final=True)
    return word


# Sentence frames: (English, German, how many numbers, relation between them).
# German sentences start with a capital; no frame starts with a number, so number words are
# always lower case. Bare numbers (the first frame) are not sentences and carry no full stop.
_FRAMES = (
    ("{a}", "{a}", 1, None),
    ("The number is {a}.", "Die Zahl ist {a}.", 1, None),
    ("We count to {a}.", "Wir zählen bis {a}.", 1, None),
    ("Room {a} is free.", "Zimmer {a} ist frei.", 1, None),
    ("Page {a} is missing.", "Seite {a} fehlt.", 1, None),
    ("After {a} comes {b}.", "Nach {a} kommt {b}.", 2, "next"),
    ("We know that {a} is greater than {b}.", "Wir wissen, dass {a} größer als {b} ist.", 2, "greater"),
    ("I think that {a} is less than {b}.", "Ich glaube, dass {a} kleiner als {b} ist.", 2, "less"),
)


def _number(rng: random.Random, max_digits: int) -> int:
    digits = rng.randint(1, max_digits)
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def _pair(rng: random.Random, max_digits: int) -> tuple[str, str]:
    en, de, count, relation = _FRAMES[rng.randrange(len(_FRAMES))]
    a = _number(rng, max_digits)
    if count == 1:
        return en.format(a=english(a)), de.format(a=german(a))
    if relation == "next":
        a = min(a, 10**max_digits - 2)
        b = a + 1
    else:
        b = _number(rng, max_digits)
        while b == a:
            b = _number(rng, max_digits)
        lo, hi = min(a, b), max(a, b)
        a, b = (hi, lo) if relation == "greater" else (lo, hi)
    return en.format(a=english(a), b=english(b)), de.format(a=german(a), b=german(b))


def generate(
    seed: int = DEFAULT_SEED, sizes: dict[str, int] | None = None, max_digits: int = 6
) -> dict[str, list[tuple[str, str]]]:
    """{"train": [(english, german), ...], "dev": [...], "test": [...]}, disjoint, from the seed.

    Dev and test are drawn first, then train, all from one random stream; a pair whose English
    side was drawn before is drawn again.
    """
    sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
    for name, k in sizes.items():
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise UserError(f"numbers corpus: {name} size must be a whole number >= 0, got {k!r}")
    if not isinstance(max_digits, int) or isinstance(max_digits, bool) or not 1 <= max_digits <= 6:
        raise UserError(f"numbers corpus: max_digits must be 1 to 6, got {max_digits!r}")
    # Sentences must be unique; small number ranges support only so many.
    limit = min(2_000_000, len(_FRAMES) * 10**max_digits // 4)
    if sum(sizes.values()) > limit:
        raise UserError(
            f"numbers corpus: at most {limit:,} pairs with max_digits={max_digits}, got {sum(sizes.values()):,}"
        )
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {}
    order = [s for s in ("dev", "test") if s in sizes] + [s for s in sizes if s not in ("dev", "test")]
    for name in order:
        pairs: list[tuple[str, str]] = []
        while len(pairs) < sizes[name]:
            en, de = _pair(rng, max_digits)
            if en in seen:
                continue
            seen.add(en)
            pairs.append((en, de))
        out[name] = pairs
    return {name: out[name] for name in sizes}


def write(
    out_dir: str | Path, seed: int = DEFAULT_SEED, sizes: dict[str, int] | None = None, max_digits: int = 6
) -> dict[str, Path]:
    """Write {split}.en / {split}.de into out_dir; returns {"train.en": path, ...}.

    Files are written to temporary names and renamed, so a reader never sees half a file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for split, pairs in generate(seed, sizes, max_digits).items():
        for lang, col in ((SRC_LANG, 0), (TGT_LANG, 1)):
            path = out / f"{split}.{lang}"
            with AtomicFile(path) as f:
                f.write("".join(p[col] + "\n" for p in pairs))
            written[path.name] = path
    return written


def ensure_written(out_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Write the default corpus into out_dir unless its six files are already there."""
    out = Path(out_dir)
    names = [f"{s}.{lang}" for s in DEFAULT_SIZES for lang in (SRC_LANG, TGT_LANG)]
    if not all((out / n).is_file() for n in names):
        write(out, seed)
    return out
