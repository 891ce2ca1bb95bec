"""Tests of the command line (w2sg_utils.experiments.cli, Chapter 5): help, presets, argument errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from w2sg_utils.experiments import cli


def _err(capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_help_and_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "w2sg_utils", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "run" in r.stdout and "summarize" in r.stdout
    r = subprocess.run([sys.executable, "-m", "w2sg_utils", "run", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "--preset" in r.stdout and "hh-minilm-cpu" in r.stdout


def test_presets_and_objectives_listing(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("hh-minilm-cpu", "gpt2-hh", "tiny-gpt2"):
        assert name in out
    assert cli.main(["objectives"]) == 0
    assert "reverse_bce" in capsys.readouterr().out


@pytest.mark.parametrize("preset", ["hh-minilm-cpu", "tiny-gpt2", "gpt2-hh"])
@pytest.mark.parametrize("extra, match", [
    (["--n-test", "0"], "sizes.test: must be a positive integer"),
    (["--n-train-w2s", "5000"], "sizes.train_w2s: 5000 exceeds"),
    (["--objectives", "bce,nope"], "unknown objective 'nope'"),
    (["--n-seeds", "0"], "n_seeds"),
    (["--seeds", "1,1"], "seeds"),
    (["--ensemble-size", "1"], "ensemble_size"),
    (["--student-l2", "-1"], "strong.l2"),
    (["--teacher-labels", "0"], "teacher.n_labels"),
    (["--full", "--n-test", "10"], "mutually exclusive"),
    (["--seeds", "a,b"], "integers"),
    (["--micro-batch-size", "0"], "micro_batch_size"),
    (["--student-model", ""], "model"),
])
def test_run_argument_errors(capsys, preset, extra, match, monkeypatch, tmp_path):
    if preset == "gpt2-hh":
        import torch
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    err = _err(capsys, ["run", "--preset", preset, "--out", str(tmp_path), *extra])
    assert match in err


def test_unknown_preset(capsys, tmp_path):
    err = _err(capsys, ["run", "--preset", "gpt5", "--out", str(tmp_path)])
    assert "unknown preset 'gpt5'" in err and "hh-minilm-cpu" in err


def test_missing_data_dir_and_files(capsys, tmp_path):
    err = _err(capsys, ["run", "--out", str(tmp_path), "--data-dir", str(tmp_path / "none")])
    assert "data_dir" in err and "not a folder" in err
    err = _err(capsys, ["run", "--out", str(tmp_path), "--data-dir", str(tmp_path)])
    assert "no file for split 'train_gt'" in err


def test_gpu_preset_without_cuda(capsys, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    err = _err(capsys, ["run", "--preset", "gpt2-hh", "--out", str(tmp_path)])
    assert "needs CUDA" in err
    err = _err(capsys, ["run", "--device", "cuda", "--out", str(tmp_path)])
    assert "CUDA" in err


def test_summarize_missing_results(capsys, tmp_path):
    err = _err(capsys, ["summarize", "--out", str(tmp_path)])
    assert "no results.csv" in err


def test_run_and_summarize_tiny(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("W2SG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["run", "--out", str(tmp_path / "o"), "--n-train-gt", "40", "--n-train-w2s", "20",
            "--n-test", "20", "--seeds", "0", "--objectives", "bce", "--teacher-labels", "20",
            "--l2-grid", "", "--ensemble-size", "0", "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "3 runs" in out and "bce" in out
    assert cli.main(["summarize", "--out", str(tmp_path / "o")]) == 0
    assert os.path.isfile(tmp_path / "o" / "results.csv")


def test_causal_lm_options(capsys, tmp_path):
    from w2sg_utils.experiments.cli import build_parser, config_from_args

    args = build_parser().parse_args(
        ["run", "--preset", "tiny-gpt2", "--out", str(tmp_path), "--student-model", "tiny-gpt2:3",
         "--teacher-model", "tiny-gpt2:1", "--micro-batch-size", "2", "--teacher-labels", "10"])
    cfg = config_from_args(args)
    assert cfg["strong"]["model"] == "tiny-gpt2:3" and cfg["teacher"]["model"] == "tiny-gpt2:1"
    assert cfg["strong"]["micro_batch_size"] == cfg["teacher"]["micro_batch_size"] == 2
    assert cfg["teacher"]["n_labels"] == 10
    err = _err(capsys, ["run", "--out", str(tmp_path), "--student-model", "gpt2"])
    assert "only for causal-LM presets" in err


# ------------------------------------------- every failure: one line, through the command

def _w2sg(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "w2sg_utils", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)


def _own_folder(d, n=30):
    import json

    d.mkdir()
    for split in ("train_gt", "train_w2s", "test"):
        rows = [{"chosen": f"Human: q{i} Assistant: yes {i}", "rejected": f"Human: q{i} "
                 f"Assistant: no {i}"} for i in range(n)]
        (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_every_failure_is_one_line_through_the_command(tmp_path):
    own = _own_folder(tmp_path / "own")
    small = ["--n-train-gt", "20", "--n-train-w2s", "10", "--n-test", "10",
             "--teacher-labels", "10"]
    out = str(tmp_path / "o")
    assert _w2sg("data", "manifest", str(own)).returncode == 0
    text = (own / "test.jsonl").read_text()
    (own / "test.jsonl").write_text(text.replace("yes 3", "yes 3!"))
    bad = _own_folder(tmp_path / "bad")
    (bad / "train_gt.jsonl").write_text('{"chosen": "a", "rejected": \n')
    cases = [  # arguments, exit status, words the line must hold
        (["run", "--out", "/proc/x/y", *small], 1,
         ["cannot create or write the output folder /proc/x/y", "writable --out"]),
        (["run", "--out", out, "--n-test", "0"], 2, ["sizes.test", "w2sg run --help"]),
        (["run", "--out", out, "--objectives", "bce,nope"], 2, ["unknown objective 'nope'"]),
        (["run", "--out", out, "--seeds", "a,b"], 2, ["integers"]),
        (["run", "--out", out, "--seeds", "-1"], 2, ["seed"]),
        (["run", "--out", out, "--data-dir", str(own), *small], 1,
         ["test.jsonl", "does not match", f"w2sg data manifest {own}"]),
        (["run", "--out", out, "--data-dir", str(bad), *small], 1,
         ["train_gt.jsonl:1: malformed JSON", "fix the file"]),
        (["run", "--out", out, "--data-dir", str(own), "--dataset", "x"], 2,
         ["not allowed with argument"]),
        (["run", "--out", out, "--dataset", "Anthropic/hh-rlhf:harmless-base", *small], 1,
         ["Anthropic/hh-rlhf:harmless-base", "offline"]),
        (["summarize", "--out", str(tmp_path / "none")], 2, ["is not a folder"]),
        (["repair", "--out", str(tmp_path)], 2, ["no results.csv"]),
        (["data", "manifest", str(tmp_path / "none")], 2, ["is not a folder"]),
    ]
    for args, code, words in cases:
        r = _w2sg(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == code and len(lines) == 1, (args, r.returncode, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and lines[0].startswith("w2sg")
        for w in words:
            assert w in lines[0], (args, w, lines[0])
    assert not os.path.exists(out)  # nothing was created by a refused run
    r = _w2sg("--debug", "run", "--out", "/proc/x/y", *small)  # --debug: the traceback
    assert r.returncode == 1 and "Traceback" in r.stderr and "CommandError" in r.stderr


def test_debug_flag_after_the_command_reraises(tmp_path):
    from w2sg_utils.experiments.cli_errors import CommandError

    with pytest.raises(CommandError, match="output folder"):
        cli.main(["run", "--debug", "--out", "/proc/x/y", "--n-test", "10"])
    assert cli.main(["run", "--out", "/proc/x/y", "--n-test", "10"]) == 1


def test_dataset_folder_sizes_are_checked_against_its_splits(tmp_path, capsys):
    """``--dataset`` with a local ``datasets`` folder: its splits are read and validated
    before any work; a size above a split's rows is a one-line usage error."""
    import json

    d = tmp_path / "hf"
    d.mkdir()
    for split, n in (("train", 40), ("test", 12)):
        (d / f"{split}.jsonl").write_text("".join(
            json.dumps({"chosen": f"Human: q{i} Assistant: yes", "rejected": f"Human: q{i} "
                        "Assistant: no"}) + "\n" for i in range(n)))
    err = _err(capsys, ["run", "--out", str(tmp_path / "o"), "--dataset", str(d),
                        "--n-train-gt", "20", "--n-train-w2s", "20", "--n-test", "13",
                        "--teacher-labels", "10", "--no-progress"])
    assert "sizes.test: 13 exceeds the 12 pairs of split 'test'" in err
    assert "--n-test 12 or fewer" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_summary_never_pools_runs_on_different_data(capsys):
    import pandas as pd

    rows = []
    for data, acc in (("mine#a1", 0.9), ("mine#b2", 0.6)):
        for seed in (0, 1):
            common = {"data": data, "seed": seed, "labels": None, "objective": None,
                      "l2": None, "pgr": None}
            rows += [{**common, "stage": "teacher", "member": 0, "acc": acc - 0.1},
                     {**common, "stage": "ceiling", "member": -1, "acc": acc + 0.05},
                     {**common, "stage": "student", "member": None, "acc": acc,
                      "labels": "teacher0", "objective": "bce", "l2": 0.0, "pgr": 0.5}]
    cli._print_summary(pd.DataFrame(rows))
    out = capsys.readouterr().out
    assert out.count("== data: ") == 2
    a, b = out.split("== data: mine#b2")
    assert "0.9000" in a and "0.9000" not in b and "0.6000" in b
