"""A run directory is data: nothing in it can make the tools execute code or read or write outside it.

Static checks of the source (no pickle, eval, exec or marshal in nmt/; YAML only through safe_load;
Keras files only with safe_mode=True) and crafted run directories: a config with YAML tags, tokenizer
file names with '..' or through a symbolic link, a .keras file holding a Lambda layer's bytecode. Each
is refused with a one-line error, and the payload never runs (it would leave a marker file).
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from nmt.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCES = (
    sorted((REPO_ROOT / "nmt").rglob("*.py"))
    + [REPO_ROOT / "train.py", REPO_ROOT / "translate.py"]
    + sorted((REPO_ROOT / "scripts").glob("*.py"))
    + sorted((REPO_ROOT / "bench").glob("*.py"))
)


def calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else None
            yield node, owner, name


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_code_loading_primitives(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            )
            assert not {"pickle", "cPickle", "marshal", "dill", "shelve"} & {n.split(".")[0] for n in names}, (
                path,
                names,
            )
    # a bare load_model(...) is Keras' only where the module imports it from keras (nmt.load_model is ours)
    keras_load_model = any(
        isinstance(node, ast.ImportFrom)
        and (node.module or "").split(".")[0] in ("keras", "tensorflow", "tf_keras")
        and any(a.name == "load_model" for a in node.names)
        for node in ast.walk(tree)
    )
    for node, owner, name in calls(tree):
        assert name not in ("eval", "exec", "__import__") or owner not in (None, "builtins"), (path, node.lineno)
        if owner == "yaml":
            assert name in ("safe_load", "safe_dump", "YAMLError"), (path, node.lineno, name)
        if name == "load_model" and (owner is not None or keras_load_model):
            keywords = {k.arg: k.value for k in node.keywords}
            assert "safe_mode" in keywords and getattr(keywords["safe_mode"], "value", None) is True, (
                path,
                node.lineno,
            )


@pytest.fixture(scope="module")
def run(translator_run):
    return translator_run


def copy_run(run, tmp_path, name="crafted") -> Path:
    target = tmp_path / name
    shutil.copytree(run["dir"], target)
    return target


def test_config_with_yaml_tags_runs_nothing(run, tmp_path):
    from nmt.decode.translator import load_run

    crafted = copy_run(run, tmp_path)
    marker = tmp_path / "pwned"
    config = crafted / "config.yaml"
    config.write_text(f"!!python/object/apply:os.system ['touch {marker}']\n" + config.read_text(), encoding="utf-8")
    with pytest.raises(UserError) as error:
        load_run(crafted)
    assert "config.yaml" in str(error.value) and "\n" not in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../../../etc/hostname", "/etc/hostname", "sub/../../x.model"])
def test_tokenizer_names_cannot_leave_the_run_directory(run, tmp_path, name):
    from nmt.decode.translator import load_run

    crafted = copy_run(run, tmp_path)
    meta_path = crafted / "tokenizer" / "tokenizer.json"
    meta = json.loads(meta_path.read_text())
    meta["src"] = name
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError) as error:
        load_run(crafted)
    assert "tokenizer.json" in str(error.value) and "not a plain file name" in str(error.value)


def test_tokenizer_models_cannot_be_links_out_of_the_run_directory(run, tmp_path):
    from nmt.decode.translator import load_run

    crafted = copy_run(run, tmp_path)
    outside = tmp_path / "outside.model"
    shutil.copy(crafted / "tokenizer" / "src.model", outside)
    (crafted / "tokenizer" / "src.model").unlink()
    (crafted / "tokenizer" / "src.model").symlink_to(outside)
    with pytest.raises(UserError, match="leads outside"):
        load_run(crafted)


def test_keras_file_with_a_lambda_layer_is_refused_unexecuted(run, tmp_path):
    import keras

    from nmt.decode.translator import load_run

    marker = tmp_path / "lambda_ran"
    # A Python lambda is saved as bytecode; what a malicious one would do: touch the file system.
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # noqa: S307  (the test's own payload)
    model = keras.Sequential([keras.Input([3]), keras.layers.Lambda(payload)])
    crafted = copy_run(run, tmp_path)
    model.save(crafted / "model.keras")
    marker.unlink(missing_ok=True)  # building the model above ran it once
    with pytest.raises(UserError) as error:
        load_run(crafted)
    message = str(error.value)
    assert "model.keras" in message and "\n" not in message and "Lambda" in message and "arbitrary code" in message, (
        message
    )
    assert not marker.exists()
