"""The GPU check (Chapter 5 loops, claim C9): one JSON file from three stages.

1. ``cuda_tests``: the CUDA-marked tests (``pytest -m cuda tests``; skipped without CUDA);
2. ``training_loop``: :func:`gpu_throughput.measure` on a GPT-2-small-sized model with
   random weights, fast loop against the released minibatch-1 loop: pairs/s, tokens/s,
   model-FLOPs utilisation;
3. ``finetune_preset``: a few optimiser steps of the fine-tuning preset through the run
   store (``"not present"`` while no such preset exists);
4. ``mpnet_pair`` (:mod:`gpu_check_pair`): the pretrained pair, a MiniLM-head teacher and
   ``all-mpnet-base-v2`` fine-tuned end to end in bf16 as student and ceiling: test
   accuracies, PGR and training seconds per pair.

Runs offline with torch and transformers installed; under 8 minutes on one H100/H200
(the stages' sizes are fixed below). ``--dry-run``: the same code on tiny sizes on the
CPU (what ``make test`` runs, through ``tests/test_gpu_check.py``). Start it with
``bash benchmarks/gpu_check.sh [--dry-run] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FINETUNE_PRESETS = ("minilm-finetune",)  # the first one present is run
LIMIT_S = 480

# stage sizes: (GPU run, dry run)
LOOP = {False: dict(size="small", steps=3, micro=16, max_length=1024, device="cuda"),
        True: dict(size="tiny", steps=1, micro=8, max_length=64, device="cpu")}
FINETUNE = {False: dict(sizes={"train_gt": 64, "train_w2s": 64, "test": 64}, device="cuda"),
            True: dict(sizes={"train_gt": 16, "train_w2s": 16, "test": 8}, device="cpu")}


def cuda_tests(dry: bool, timeout: float = 240) -> dict:
    """``pytest -m cuda tests``; counts from its JUnit report."""
    try:
        import pytest  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "pytest is not installed"}
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
               f"--junitxml={xml}", str(ROOT / "tests")]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if xml.is_file():
            suite = ET.parse(xml).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            counts = {k: int(suite.get(k, 0)) for k in counts}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    # on a GPU every CUDA test must run; in a dry run (no CUDA) they are all skipped
    ok = r.returncode == 0 and counts["tests"] > 0 and (passed > 0 if not dry else True)
    status = "failed" if not ok else "passed" if passed else "skipped"
    return {"status": status, "returncode": r.returncode, "passed": passed,
            "failed": counts["failures"] + counts["errors"], "skipped": counts["skipped"],
            **({} if ok else {"output_tail": (r.stdout + r.stderr)[-3000:]})}


def training_loop(dry: bool, peak_tflops: float | None) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_throughput import measure

    return {"status": "passed", **measure(**LOOP[dry], peak_tflops=peak_tflops)}


def finetune_preset(dry: bool) -> dict:
    from w2sg_utils import experiments as E

    name = next((p for p in FINETUNE_PRESETS if p in E.PRESETS), None)
    if name is None:
        return {"status": "not present", "looked_for": list(FINETUNE_PRESETS)}
    spec = FINETUNE[dry]
    n_labels = min(E.PRESETS[name].config["teacher"]["n_labels"], spec["sizes"]["train_gt"])
    cfg = E.make_config(name, sizes=spec["sizes"], seeds=[0], objectives=["bce"],
                        teacher={"n_labels": n_labels}, l2_grid=[], ensemble_size=0,
                        device=spec["device"])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["W2SG_CACHE"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        df = E.run_sweep(cfg, Path(tmp) / "out", progress=False)
        secs = time.perf_counter() - t0
    return {"status": "passed", "preset": name, "sizes": spec["sizes"], "runs": len(df),
            "seconds": secs, "acc": {r["stage"]: float(r["acc"]) for _, r in df.iterrows()}}


def _stage(fn, *args) -> dict:
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a failed stage is recorded, the others still run
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc()[-3000:]}
    out["stage_seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    ap.add_argument("--out", default="gpu_check.json", help="the JSON file to write")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="dense bf16 peak of the GPU if not in gpu_throughput.PEAK_BF16")
    args = ap.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; use --dry-run for the CPU check", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    import transformers

    report = {
        "check": "w2sg-book gpu_check (issue 13)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 - py<3.11
        "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "cuda": torch.version.cuda},
        "limit_seconds": LIMIT_S,
        "stages": {},
    }
    report["stages"]["cuda_tests"] = _stage(cuda_tests, args.dry_run)
    report["stages"]["training_loop"] = _stage(training_loop, args.dry_run, args.peak_tflops)
    report["stages"]["finetune_preset"] = _stage(finetune_preset, args.dry_run)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check_pair import mpnet_pair

    report["stages"]["mpnet_pair"] = _stage(mpnet_pair, args.dry_run)
    report["seconds"] = time.perf_counter() - t0
    report["ok"] = all(s["status"] != "failed" for s in report["stages"].values())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out)
    for name, s in report["stages"].items():
        print(f"{name}: {s['status']} ({s['stage_seconds']:.0f} s)")
    print(f"gpu_check: {'ok' if report['ok'] else 'FAILED'} in {report['seconds']:.0f} s -> {out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
