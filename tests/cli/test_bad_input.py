"""Bad input through the four command-line tools, run as a user runs them (subprocesses).

Every case must end with a non-zero exit status, one line ``error: ...`` on standard error that names
the file, line, key or option at fault, no Python traceback, and nothing half-written left behind (no
temporary file, no partial output, no deleted file of the user's).

The cases' processes are started together, a few at a time (most of their time is importing
TensorFlow), in a module fixture; each case is then checked as its own test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBERS = REPO_ROOT / "data" / "numbers"


@dataclass
class Case:
    name: str
    argv: list  # [script, args...]; script relative to the repository root
    expect: list  # substrings of the error line (the file, line, key or option at fault)
    stdin: bytes = b""
    watch: list = field(default_factory=list)  # directories that must hold no temporary files afterwards
    intact: dict = field(default_factory=dict)  # path -> bytes it must still hold
    absent: list = field(default_factory=list)  # paths that must not exist afterwards


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def lines(n: int, start: int = 0, side: str = "en") -> str:
    all_lines = (NUMBERS / f"train.{side}").read_text(encoding="utf-8").splitlines()
    return "".join(line + "\n" for line in all_lines[start : start + n])


def make_cases(tmp: Path, run: Path, trained_run: Path) -> list:
    """The cases, with the files each needs written under tmp."""
    toy = str(REPO_ROOT / "configs" / "toy.yaml")

    def train(name, *overrides, config=toy, run_dir=None, extra=()):
        argv = ["train.py", "--config", str(config), "--run-dir", str(run_dir or tmp / "runs" / name)]
        for o in overrides:
            argv += ["--set", o]
        return argv + list(extra)

    def corpus(name, src, tgt):
        s, t = write(tmp / name / "train.en", src), write(tmp / name / "train.de", tgt)
        return [f"corpus.train_src={s}", f"corpus.train_tgt={t}", "corpus.dev_size=5", "corpus.test_size=5"]

    def translate(*args, model=run):
        return ["translate.py", "--model", str(model), *map(str, args)]

    src_ok = write(tmp / "src.en", lines(20))
    ref_short = write(tmp / "ref.de", lines(19, side="de"))
    bad_utf8 = write(tmp / "bad_utf8.en", lines(2).encode() + b"zwei \xff drei\n" + lines(3).encode())

    def broken_run(name, damage):
        """A copy of the untrained run directory with one thing damaged."""
        import shutil

        d = tmp / "runs" / name
        shutil.copytree(run, d)
        damage(d)
        return d

    corrupt_model = broken_run("corrupt_model", lambda d: write(d / "model.keras", b"PK\x03\x04 not really a zip"))
    corrupt_spm = broken_run(
        "corrupt_spm",
        lambda d: [write(d / "tokenizer" / name, b"\x00garbage" * 10) for name in ("src.model", "tgt.model")],
    )
    escaping = broken_run(
        "escaping",
        lambda d: write(
            d / "tokenizer" / "tokenizer.json",
            (d / "tokenizer" / "tokenizer.json").read_text().replace('"src.model"', '"../../../etc/passwd"'),
        ),
    )

    # A trained run (train.py) with a truncated checkpoint, resumed.
    import shutil

    truncated = tmp / "runs" / "truncated_ckpt"
    shutil.copytree(trained_run, truncated)
    last = (truncated / "checkpoints" / (eval_pointer(truncated))) / "weights.weights.h5"
    last.write_bytes(last.read_bytes()[:5000])
    trained_overrides = (trained_run / "overrides.txt").read_text().split()

    home = tmp / "home"
    write(home / "thesis.tex", "years of work\n")

    tsv10 = write(tmp / "tiny.tsv", "".join(f"{i} one\t{i} eins\n" for i in range(10)))
    tsv_cols = write(
        tmp / "cols.tsv", "".join(f"{i} one\t{i} eins\n" if i != 16 else f"{i} no tab\n" for i in range(30))
    )
    (tmp / "full").mkdir()
    read_only_out = "/proc/nmt-test-output.txt"  # a location nobody, root included, can create files in

    yaml_tag = write(
        tmp / "evil.yaml", f"train:\n  epochs: !!python/object/apply:os.system ['touch {tmp / 'pwned'}']\n"
    )

    return [
        # ---- train.py: corpora
        Case(
            "missing corpus",
            train("c1", "corpus.train_src=/nonexistent/train.en", f"corpus.train_tgt={NUMBERS / 'train.de'}"),
            ["/nonexistent/train.en"],
        ),
        Case("empty corpus", train("c2", *corpus("empty", "", "")), ["empty/train.en", "empty"]),
        Case(
            "binary corpus",
            train("c3", *corpus("binary", bytes(range(256)) * 4, lines(100, side="de"))),
            ["binary/train.en", "UTF-8"],
        ),
        Case(
            "misaligned corpus",
            train("c4", *corpus("misaligned", lines(100), lines(99, side="de"))),
            ["misaligned/train.en", "100", "99"],
        ),
        Case(
            "everything filtered",
            train(
                "c5",
                *corpus("long", lines(100), lines(100, side="de")),
                "corpus.max_len=1",
                "tokenizer.vocab_size=200",
                "tokenizer.byte_fallback=false",
            ),
            ["long/train.en", "drop all", "corpus.max_len"],
        ),
        Case(
            "invalid UTF-8 mid-file",
            train(
                "c6",
                *corpus(
                    "midfile",
                    lines(40).encode() + b"vier \xc3\x28 f\xfcnf\n" + lines(40).encode(),
                    lines(81, side="de"),
                ),
            ),
            ["midfile/train.en", "line 41", "byte"],
        ),
        # ---- train.py: config
        Case("unknown key", train("k1", "train.epohcs=3"), ["train.epohcs", "unknown key"]),
        Case("wrong type", train("k2", "train.epochs=many"), ["train.epochs", "'many'", "a positive integer"]),
        Case("NaN learning rate", train("k3", "train.learning_rate=.nan"), ["train.learning_rate", "finite"]),
        Case("infinite length penalty", train("k4", "decode.length_penalty=.inf"), ["decode.length_penalty", "finite"]),
        Case(
            "NaN in a config file",
            train("k5", config=write(tmp / "nan.yaml", "decode:\n  max_len_a: .nan\n")),
            ["decode.max_len_a", "finite"],
        ),
        Case("missing config", train("k6", config=tmp / "nope.yaml"), ["nope.yaml", "not found"]),
        Case("YAML tag in a config", train("k7", config=yaml_tag), ["evil.yaml"], absent=[tmp / "pwned"]),
        Case(
            "vocabulary too large",
            train("v1", *corpus("small_vocab", lines(60), lines(60, side="de")), "tokenizer.vocab_size=5000"),
            ["tokenizer.vocab_size=5000", "or less"],
            watch=[tmp / "runs" / "v1"],
        ),
        # ---- train.py: run directories
        Case(
            "run directory of another config",
            train("r1", *trained_overrides, "model.decoder_units=48", run_dir=trained_run, extra=["--resume"]),
            ["config.yaml", "model.decoder_units"],
        ),
        Case(
            "--overwrite of a home folder",
            train("r2", run_dir=home, extra=["--overwrite"]),
            [str(home), "not a run directory"],
            intact={home / "thesis.tex": b"years of work\n"},
        ),
        Case("--run-dir is a file", train("r3", run_dir=src_ok), [str(src_ok), "not a directory"]),
        Case(
            "truncated checkpoint",
            train("r4", *trained_overrides, run_dir=truncated, extra=["--resume"]),
            ["weights.weights.h5", "cannot load"],
        ),
        Case("resume without a run", train("r5", extra=["--resume"]), ["--resume", "no training run"]),
        # ---- translate.py
        Case(
            "missing run directory",
            translate("x", model=tmp / "no_run"),
            ["--model", "no_run", "no such run directory"],
        ),
        Case("corrupt model.keras", translate("eins", model=corrupt_model), ["corrupt_model/model.keras"]),
        Case(
            "corrupt tokenizer model",
            translate("eins", model=corrupt_spm),
            ["corrupt_spm/tokenizer/src.model", "SentencePiece"],
        ),
        Case(
            "tokenizer path outside the run",
            translate("eins", model=escaping),
            ["tokenizer.json", "../../../etc/passwd"],
        ),
        Case("beam size 0", translate("--beam-size", 0, "eins"), ["--beam-size", "received 0"]),
        Case("n-best above the beam", translate("--beam-size", 2, "--nbest", 3, "eins"), ["--nbest", "beam size (2)"]),
        Case("NaN length penalty", translate("--length-penalty", "nan", "eins"), ["--length-penalty", "nan"]),
        Case("missing input file", translate("--input", tmp / "nothing.en"), ["--input", "nothing.en"]),
        Case(
            "invalid UTF-8 input",
            translate("--input", bad_utf8, "--output", tmp / "out1.de"),
            ["bad_utf8.en", "line 3", "byte 6"],
            watch=[tmp],
            absent=[tmp / "out1.de"],
        ),
        Case(
            "output in a missing directory",
            translate("--input", src_ok, "--output", tmp / "missing_dir" / "out.de"),
            ["--output", "missing_dir", "does not exist"],
        ),
        Case(
            "output on a read-only location",
            translate("--input", src_ok, "--output", read_only_out),
            ["--output", read_only_out],
        ),
        Case(
            "reference with another line count",
            translate("--input", src_ok, "--reference", ref_short),
            ["--reference", "ref.de", "19 lines", "20"],
        ),
        Case(
            "reference count through a pipe",
            translate("--input", "/dev/stdin", "--reference", ref_short, "--output", tmp / "piped.de"),
            ["--reference", "ref.de", "19 lines", "20"],
            stdin=lines(20).encode(),
        ),
        # ---- scripts/evaluate.py
        Case(
            "evaluate --width -1",
            ["scripts/evaluate.py", "--width", "-1", "--ref", str(ref_short), str(ref_short)],
            ["--width", "-1"],
        ),
        Case(
            "evaluate line counts",
            ["scripts/evaluate.py", "--ref", str(ref_short), str(src_ok)],
            ["ref.de", "src.en", "19", "20"],
        ),
        Case(
            "evaluate missing hypothesis",
            ["scripts/evaluate.py", "--ref", str(ref_short), str(tmp / "no.hyp")],
            ["no.hyp"],
        ),
        # ---- scripts/prepare_data.py
        Case(
            "tsv of 10 pairs",
            [
                "scripts/prepare_data.py",
                "--data-dir",
                str(tmp / "data1"),
                "tsv",
                str(tsv10),
                "--src-col",
                "1",
                "--tgt-col",
                "2",
            ],
            ["tiny.tsv", "--dev-size", "10 pairs"],
            absent=[tmp / "data1"],
        ),
        Case(
            "tsv --dev-size 0",
            [
                "scripts/prepare_data.py",
                "--data-dir",
                str(tmp / "data2"),
                "tsv",
                str(tsv10),
                "--src-col",
                "1",
                "--tgt-col",
                "2",
                "--dev-size",
                "0",
            ],
            ["--dev-size", "empty"],
            absent=[tmp / "data2"],
        ),
        Case(
            "tsv missing column",
            [
                "scripts/prepare_data.py",
                "--data-dir",
                str(tmp / "data3"),
                "tsv",
                str(tsv_cols),
                "--src-col",
                "1",
                "--tgt-col",
                "2",
            ],
            ["cols.tsv", "line 17"],
            watch=[tmp / "data3"],
        ),
        Case(
            "numbers --dev-size 0",
            ["scripts/prepare_data.py", "--data-dir", str(tmp / "data4"), "numbers", "--dev-size", "0"],
            ["--dev-size", "got 0"],
            absent=[tmp / "data4"],
        ),
        Case("unknown option", ["scripts/prepare_data.py", "multi30k", "--sorce", "x"], ["--sorce"]),
    ]


def eval_pointer(run: Path) -> str:
    import json

    return json.loads((run / "checkpoints" / "last.json").read_text())["dir"]


TINY_TRAIN = [
    "model.embedding_dim=16",
    "model.encoder_units=16",
    "model.decoder_units=16",
    "model.attention_units=16",
    "model.output_dim=16",
    "data.batch_size=16",
    "train.max_steps=4",
    "train.checkpoint_every=2",
    "train.eval_max_sentences=5",
    "train.tensorboard=false",
    "train.verbose=0",
    "decode.beam_size=1",
    "tokenizer.vocab_size=200",
    "tokenizer.byte_fallback=false",
]


def _run(case: Case) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("NMT_VERBOSE", None)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / case.argv[0]), *case.argv[1:]],
        input=case.stdin,
        capture_output=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from tests import helpers

    tmp = tmp_path_factory.mktemp("bad_input")
    run = helpers.make_run(tmp / "untrained", epochs=0)["dir"]
    trained = tmp / "runs" / "trained"
    proc = _run(
        Case(
            "setup",
            [
                "train.py",
                "--config",
                str(REPO_ROOT / "configs" / "toy.yaml"),
                "--run-dir",
                str(trained),
                *[a for o in TINY_TRAIN for a in ("--set", o)],
            ],
            [],
        )
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    (trained / "overrides.txt").write_text("\n".join(TINY_TRAIN))
    cases = make_cases(tmp, run, trained)
    with ThreadPoolExecutor(max_workers=3) as pool:
        procs = list(pool.map(_run, cases))
    return {case.name: (case, proc) for case, proc in zip(cases, procs)}


CASE_NAMES = [
    "missing corpus",
    "empty corpus",
    "binary corpus",
    "misaligned corpus",
    "everything filtered",
    "invalid UTF-8 mid-file",
    "unknown key",
    "wrong type",
    "NaN learning rate",
    "infinite length penalty",
    "NaN in a config file",
    "missing config",
    "YAML tag in a config",
    "vocabulary too large",
    "run directory of another config",
    "--overwrite of a home folder",
    "--run-dir is a file",
    "truncated checkpoint",
    "resume without a run",
    "missing run directory",
    "corrupt model.keras",
    "corrupt tokenizer model",
    "tokenizer path outside the run",
    "beam size 0",
    "n-best above the beam",
    "NaN length penalty",
    "missing input file",
    "invalid UTF-8 input",
    "output in a missing directory",
    "output on a read-only location",
    "reference with another line count",
    "reference count through a pipe",
    "evaluate --width -1",
    "evaluate line counts",
    "evaluate missing hypothesis",
    "tsv of 10 pairs",
    "tsv --dev-size 0",
    "tsv missing column",
    "numbers --dev-size 0",
    "unknown option",
]


def test_every_case_is_listed(results):
    assert sorted(results) == sorted(CASE_NAMES) and len(CASE_NAMES) >= 25


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_gives_one_line_error(results, name):
    case, proc = results[name]
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode != 0, (name, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-2000:]
    assert stderr.rstrip("\n").splitlines()[-1] == errors[0], stderr[-2000:]  # the last word
    for part in case.expect:
        assert part in errors[0], (part, errors[0])
    for directory in case.watch:
        if directory.exists():
            leftovers = [p.name for p in directory.rglob("*") if ".tmp" in p.name]
            assert not leftovers, leftovers
    for path, data in case.intact.items():
        assert path.read_bytes() == data
    for path in case.absent:
        assert not path.exists(), path


def test_piped_translations_are_kept_when_the_reference_count_differs(results):
    """The reference count of a pipe is checked after translating (a pipe is read once): the 20
    translations are written, and the error says the counts differ."""
    case, proc = results["reference count through a pipe"]
    out = Path(case.argv[case.argv.index("--output") + 1])
    assert len(out.read_text(encoding="utf-8").splitlines()) == 20


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KB tmpfs (a disk that fills up); needs the privilege to mount, as root in the CI container."""
    import shutil as sh

    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or sh.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)


def test_a_full_disk_under_a_checkpoint_is_one_line_and_leaves_no_temporary(results, small_disk):
    """train.py on a disk with room for the tokenizer and the logs but not for a checkpoint."""
    import shutil as sh

    case, _ = results["truncated checkpoint"]
    trained = Path(case.argv[case.argv.index("--run-dir") + 1])
    run = small_disk / "run"
    run.mkdir()
    sh.copytree(trained / "tokenizer", run / "tokenizer")
    argv = ["train.py", "--config", str(REPO_ROOT / "configs" / "toy.yaml"), "--run-dir", str(run)]
    proc = _run(Case("full disk", argv + [a for o in TINY_TRAIN for a in ("--set", o)], []))
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith(f"error: checkpoint {run / 'checkpoints'}/ckpt-") and "No space left on device" in last, last
    # No temporary file left (the writer's lock file is no temporary: it stays, nmt.rundir.WriterLock).
    assert not [p for p in run.rglob("*") if p.name.startswith(".") and p.name != ".train.lock"], list(run.rglob("*"))


def test_a_full_disk_under_the_output_is_one_line_and_leaves_no_temporary(results, small_disk):
    """translate.py --output on a disk that is full: one line naming the option and the file, exit 2, no
    partial output and no temporary file. (A file-size limit would be simpler, but TensorFlow's AutoGraph
    writes temporary files too and changes its behaviour when it cannot.)"""
    case, _ = results["reference with another line count"]
    model = case.argv[case.argv.index("--model") + 1]
    source = case.argv[case.argv.index("--input") + 1]
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    out = small_disk / "out.de"
    proc = _run(Case("full disk", ["translate.py", "--model", model, "--input", source, "--output", str(out)], []))
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.rstrip("\n").splitlines()[-1]
    assert last == f"error: --output {out}: cannot write it (No space left on device)", last
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
