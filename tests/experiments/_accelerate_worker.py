"""Worker of tests/test_distributed.py: train and score a tiny GPT-2 reward model.

Run as one plain process or under ``accelerate launch`` with several; the main process
saves the predictions and the gradients of the last optimiser step to ``argv[1]``.
Usage: ``python _accelerate_worker.py OUT.npz MODEL_DIR``.
"""

import sys

import numpy as np
import torch

from w2sg_utils.experiments import distributed as D
from w2sg_utils.experiments import models as M
from w2sg_utils.experiments import training as T
from w2sg_utils.experiments.data import load_hh_helpful
from w2sg_utils.losses import get_objective

# 11 pairs in minibatches of 5 (5, 5, 1): shares of 3 and 2 pairs, microbatches of 2,
# and a last minibatch of one pair, where the second process only pads.
KW = dict(lr=1e-3, batch_size=5, micro_batch_size=2, epochs=2, max_length=48, seed=3,
          progress=False)


def main(out, model_dir):
    torch.set_num_threads(1)
    ds = load_hh_helpful({"train_gt": 4, "train_w2s": 11, "test": 4}, seed=0)["train_w2s"]
    y = np.linspace(0.1, 0.9, len(ds))
    m, tok = M.load_causal_lm_reward(model_dir, seed=0)
    st = T.train_reward_model(m, tok, ds.text_a, ds.text_b, y, get_objective("bce"), **KW)
    z = T.reward_logits(m, tok, ds.text_a, ds.text_b, max_length=48, batch_size=3,
                        progress=False)
    if D.current().is_main:
        grads = [p.grad.detach().reshape(-1) for p in m.parameters()]
        np.savez(out, z=z, grad=torch.cat(grads).numpy(), loss=st["loss"],
                 tokens=st["tokens"], pairs=st["pairs"], steps=st["steps"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
