"""Config loading: typed sections, one-line errors naming the key, overrides, shipped configs."""

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nmt import config
from nmt.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_shipped_configs_exist_and_load():
    names = {p.name for p in CONFIGS}
    assert {"toy.yaml", "multi30k_cho2014.yaml", "multi30k_attention.yaml"} <= names
    for path in CONFIGS:
        cfg = config.load(path)
        assert isinstance(cfg.train, config.TrainConfig)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_field_is_listed_with_a_comment(path):
    """Each dataclass field appears in the file once, on a line with a # comment."""
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    for section, cls in config.SECTIONS.items():
        assert section in raw, f"{path.name}: section {section} missing"
        fields = [f.name for f in dataclasses.fields(cls)]
        assert sorted(raw[section]) == sorted(fields), f"{path.name}: {section} fields differ"
        block = text.split(f"\n{section}:\n", 1)[1]
        for name in fields:
            line = re.search(rf"^  {name}:.*$", block, flags=re.M)
            assert line and "#" in line.group(0), f"{path.name}: {section}.{name} has no comment"


def test_round_trip_through_yaml(tmp_path):
    cfg = config.load(ROOT / "configs" / "toy.yaml", ["train.epochs=2", "data.bucket_lengths=[8, 64]"])
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml(), encoding="utf-8")
    again = config.load(path)
    assert again == cfg
    assert again.data.bucket_lengths == (8, 64)
    assert again.train.epochs == 2 and config.load(ROOT / "configs" / "toy.yaml").train.epochs == 3


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochs=three"], "train.epochs: received 'three', expected a positive integer"),
        (["train.learning_rate=fast"], "train.learning_rate: received 'fast', expected a positive number"),
        (["train.learning_rate=.nan"], "train.learning_rate: received nan, expected a finite positive number"),
        (["train.beta_2=1"], "train.beta_2: received 1.0, expected a number in [0, 1)"),
        (["train.verbose=3"], "train.verbose: received 3, expected one of 0, 1, 2"),
        (["train.max_steps=0"], "train.max_steps: received 0, expected a positive integer or null"),
        (["data.bucket_lengths=[8, 8]"], "data.bucket_lengths: received [8, 8], expected a non-empty list"),
        (["corpus.dev_src=' '", "corpus.dev_tgt=x"], "corpus.dev_src: received ' ', expected a non-empty path"),
        (["train.jit_compile=1"], "train.jit_compile: received 1, expected true or false"),
        (["train.epoch=3"], "train.epoch: unknown key"),
        (["trian.epochs=3"], "unknown section 'trian'"),
        (["train.epochs"], "expected section.key=value"),
        (["model.deep_output=maxout", "model.output_dim=511"], "model.output_dim"),
        (["model.architecture=transformer"], "model.architecture"),
        (["train.optimizer=sgd"], "train.optimizer"),
        (["decode.nbest=9", "decode.beam_size=4"], "decode.nbest"),
        (["data.batch_size=0"], "data.batch_size"),
        (["tokenizer.model_type=word"], "tokenizer.model_type"),
        (["train.schedule=inverse_sqrt"], "train.warmup_steps"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(UserError) as info:
        config.load(ROOT / "configs" / "toy.yaml", overrides)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        config.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.yaml line \d+"):
        config.load(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("training:\n  epochs: 1\n", encoding="utf-8")
    with pytest.raises(UserError, match="unknown section 'training'"):
        config.load(unknown)


def test_train_cli_reports_config_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--config",
            str(ROOT / "configs" / "toy.yaml"),
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            "train.epochs=-1",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("error: train.epochs: received -1, expected a positive integer")


def test_train_cli_checks_the_config_before_loading_tensorflow(tmp_path):
    """A mistake in the config or a --set is reported at once: TensorFlow (seconds to load) is not imported."""
    code = (
        "import sys; from nmt.cli.train import main; "
        "rc = main(sys.argv[1:]); print(rc, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    argv = ["--config", str(ROOT / "configs" / "toy.yaml"), "--run-dir", str(tmp_path / "run")]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv, "--set", "train.learning_rate=.nan"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    assert proc.stdout.split() == ["2", "[]"], proc.stderr
    assert proc.stderr.strip() == "error: train.learning_rate: received nan, expected a finite positive number"


def test_precision_auto_picks_bfloat16_only_where_it_is_fast(tmp_path):
    from nmt.model import precision

    assert config.load(None, ["train.precision=auto"]).train.precision == "auto"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert precision.cpu_bf16_flags(str(cpuinfo)) == ["avx512_bf16"]
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert precision.cpu_bf16_flags(str(cpuinfo)) == []
    assert precision.cpu_bf16_flags(str(tmp_path / "missing")) is None
    assert precision.resolve("auto", gpus=0, cpu_flags=["avx512_bf16"])[0] == "mixed_bfloat16"
    assert precision.resolve("auto", gpus=0, cpu_flags=["amx_bf16"])[0] == "mixed_bfloat16"
    policy, why = precision.resolve("auto", gpus=0, cpu_flags=[])
    assert policy == "float32" and "no bfloat16 instructions" in why
    assert precision.resolve("auto", gpus=0, cpu_flags=None)[0] == "float32"
    assert precision.resolve("auto", gpus=1, cpu_flags=[])[0] == "mixed_bfloat16"
    assert precision.resolve("float32", gpus=1) == ("float32", "as configured")
    with pytest.raises(UserError, match="train.precision"):
        config.load(None, ["train.precision=fast"])


# ------------------------------------------------------------------------------------ declarations


def test_every_field_is_declared_once_with_a_comment_and_the_reference_config_uses_it():
    """The declarations are the single source: each field has a comment, and configs/toy.yaml (the
    commented reference config) carries exactly that comment for every field."""
    comments = config.field_comments(config.REFERENCE_CONFIG)
    for section, cls in config.SECTIONS.items():
        for name, _, allowed, doc in cls.declarations():
            assert doc and allowed, (section, name)
            assert comments.get(f"{section}.{name}") == doc, (section, name, comments.get(f"{section}.{name}"), doc)


def test_defaults_satisfy_their_declarations_and_bounds_are_enforced_in_python_too():
    for cls in config.SECTIONS.values():
        cls()  # the declared defaults pass their own bounds
    with pytest.raises(UserError, match=r"^model\.embedding_dropout: received 1\.5, expected a number in \[0, 1\)$"):
        config.ModelConfig(embedding_dropout=1.5)
    with pytest.raises(
        UserError, match=r"^tokenizer\.character_coverage: received 0\.5, expected a number in \[0\.9, 1\.0\]$"
    ):
        config.TokenizerConfig(character_coverage=0.5)
    assert config.TrainConfig(learning_rate=1).learning_rate == 1.0 and isinstance(
        config.TrainConfig(learning_rate=1).learning_rate, float
    )
    assert config.DataConfig(bucket_lengths=[8, 16]).bucket_lengths == (8, 16)


def test_the_reference_lists_allowed_values_from_the_declarations():
    table = config.reference_markdown()
    assert "| `train.learning_rate` | `0.001` | a positive number | peak learning rate |" in table
    assert "| `model.attention_score` | `additive` | one of additive, dot, scaled_dot |" in table


def test_docs_config_md_holds_the_current_reference():
    """docs/CONFIG.md's table is the one generated from the declarations (a stale doc fails here; run
    python scripts/config_reference.py), and it names every field of every section."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "config_reference.py"), "--check"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = (ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    assert config.reference_markdown() in doc
    for section, cls in config.SECTIONS.items():
        for name in (f.name for f in dataclasses.fields(cls)):
            assert f"| `{section}.{name}` |" in doc, (section, name)


def test_loading_a_run_to_translate_imports_no_corpus_or_input_pipeline():
    code = (
        "import sys; import nmt.cli.translate, nmt.decode.translator, nmt.config; "
        "nmt.config.load(sys.argv[1]); "
        "bad = sorted(m for m in ('nmt.text.corpus', 'nmt.train.batches', 'nmt.text.toy_corpus') if m in sys.modules); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "configs" / "toy.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
