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
