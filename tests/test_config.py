"""Config loading: typed sections, one-line errors naming the key, overrides, shipped configs."""

import dataclasses
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
        (["train.epochs=three"], "train.epochs: received 'three', expected an integer"),
        (["train.learning_rate=fast"], "train.learning_rate: received 'fast', expected a number"),
        (["train.jit_compile=1"], "train.jit_compile: received 1, expected true or false"),
        (["train.epoch=3"], "train.epoch: unknown key"),
        (["trian.epochs=3"], "unknown section 'trian'"),
        (["train.epochs"], "expected section.key=value"),
        (["model.output_dim=511"], "model.output_dim"),
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


def test_precision_auto_picks_bfloat16_only_where_it_is_fast(tmp_path):
    from nmt import precision

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
