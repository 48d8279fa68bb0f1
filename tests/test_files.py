"""nmt.files: atomic writes keep the plain modes (umask respected), write devices and pipes directly,
turn a failed write into a one-line error and leave no temporary file; nmt.rundir: --overwrite clears
only what a run wrote, and only in a run directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nmt import rundir
from nmt.errors import UserError
from nmt.files import AtomicFile, atomic_directory, atomic_write_text, child, plain_mode

REPO_ROOT = Path(__file__).resolve().parent.parent


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_files_and_directories_get_the_modes_open_and_mkdir_would_give(tmp_path, mask):
    old = os.umask(mask)
    try:
        plain_file = tmp_path / "plain.txt"
        plain_file.write_text("x")
        plain_dir = tmp_path / "plain_dir"
        plain_dir.mkdir()
        atomic_write_text(tmp_path / "a.txt", "hello\n")
        with AtomicFile(tmp_path / "b.txt") as f:
            f.write("b\n")
        with atomic_directory(tmp_path / "export") as d:
            (d / "inside").write_text("x")
        assert plain_mode() == mode(plain_file) == 0o666 & ~mask
        assert plain_mode(directory=True) == mode(plain_dir) == 0o777 & ~mask
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.txt") == mode(tmp_path / "b.txt") == mode(plain_file)
    assert mode(tmp_path / "export") == mode(plain_dir)
    assert (tmp_path / "a.txt").read_text() == "hello\n" and (tmp_path / "export" / "inside").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "export", "plain.txt", "plain_dir"]


def test_an_aborted_file_leaves_the_old_version_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with AtomicFile(target) as f:
            f.write("new, half written")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_replaced_directory_is_complete_or_old(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target) as d:
        (d / "v").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as d:
            (d / "v").write_text("2")
            raise RuntimeError("failed half way")
    assert (target / "v").read_text() == "1"
    with atomic_directory(target) as d:
        (d / "v").write_text("3")
    assert (target / "v").read_text() == "3"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_devices_and_pipes_are_written_directly(tmp_path):
    with AtomicFile("/dev/null") as f:
        f.write("nothing\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    with AtomicFile(fifo) as f:
        f.write("through the pipe\n")
    assert reader.communicate(timeout=30)[0] == b"through the pipe\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["fifo"]


FULL_DISK = textwrap.dedent(
    """
    import resource, sys
    sys.path.insert(0, sys.argv[2])
    from nmt.errors import UserError
    from nmt.files import AtomicFile
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # writes past 4 KiB fail (EFBIG), like a full disk
    try:
        with AtomicFile(sys.argv[1], what="--output") as f:
            for _ in range(1000):
                f.write("x" * 100 + "\\n")
    except UserError as error:
        print(error)
    """
)


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(target), str(REPO_ROOT)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"--output {target}: cannot write it (File too large)"), proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_child_accepts_plain_names_inside_only(tmp_path):
    (tmp_path / "spm.model").write_text("x")
    assert child(tmp_path, "spm.model", "tokenizer.json") == tmp_path / "spm.model"
    for bad in ("../spm.model", "/etc/passwd", "..", "", "a/b", 3, None):
        with pytest.raises(UserError, match="tokenizer.json"):
            child(tmp_path, bad, "tokenizer.json")
    (tmp_path / "link.model").symlink_to("/etc/hostname")
    with pytest.raises(UserError, match="leads outside"):
        child(tmp_path, "link.model", "tokenizer.json")


def write_run_config(path: Path) -> None:
    from nmt import config

    path.mkdir(parents=True, exist_ok=True)
    (path / rundir.CONFIG_FILE).write_text(config.load(None).to_yaml(), encoding="utf-8")


def test_overwrite_refuses_a_directory_that_is_not_a_run_directory(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    (home / "config.yaml").write_text("name: my project\n")  # a config.yaml of something else
    with pytest.raises(UserError, match="is not a run directory") as error:
        rundir.clear(home)
    assert "nothing was deleted" in str(error.value) and "\n" not in str(error.value)
    assert (home / "thesis.tex").read_text() == "years of work"
    assert rundir.clear(tmp_path / "missing") == [] and rundir.clear(tmp_path / "missing") == []


def test_overwrite_removes_only_what_a_run_wrote(tmp_path):
    run = tmp_path / "run"
    write_run_config(run)
    for d in ("tokenizer", "checkpoints/ckpt-00000010", "logs/tensorboard", "export/variables"):
        (run / d).mkdir(parents=True)
    for f in ("model.keras", ".model.tmp.keras", ".config.yaml.tmp-abc", "notes.md", "logs/steps.tsv"):
        (run / f).write_text("x")
    (run / "data").mkdir()
    removed = rundir.clear(run)
    assert sorted(removed) == sorted(
        [
            ".config.yaml.tmp-abc",
            ".model.tmp.keras",
            "checkpoints",
            "config.yaml",
            "export",
            "logs",
            "model.keras",
            "tokenizer",
        ]
    )
    assert sorted(p.name for p in run.iterdir()) == ["data", "notes.md"]


def test_prepared_corpora_get_the_plain_mode(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{i} one\t{i} eins\n" for i in range(40)), encoding="utf-8")
    for argv in (
        ["numbers", "--train-size", "20", "--dev-size", "5", "--test-size", "5"],
        ["tsv", str(tsv), "--src-col", "1", "--tgt-col", "2", "--dev-size", "3", "--test-size", "3"],
    ):
        proc = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "prepare_data.py"),
                "--data-dir",
                str(tmp_path / "data"),
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda: os.umask(0o027),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    written = sorted((tmp_path / "data").rglob("*.*"))
    assert len(written) == 12
    assert all(mode(p) == 0o640 for p in written), [(p.name, oct(mode(p))) for p in written]
