"""Save the weights file dgflow-bench reads: a dict of plain state dicts, which torch.load(weights_only=True)
accepts. Here the nets keep their seeded initial weights (nothing is trained, so the example runs in
seconds); with a trained model, save its state dicts the same way. Usage: python save_weights.py OUT.pt"""

import sys
from pathlib import Path

import torch

from my_models.nets import build

Path(sys.argv[1]).parent.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
nets = build()
torch.save({"generator": nets["generator"].state_dict(), "critic": nets["critic"].state_dict()}, sys.argv[1])
