"""Counted passes of the density-ratio fits (training/density_ratio.PassTally): the logistic fine-tune and the
d_phi + d_lambda corrector report the samples through each network pass, checked against an independent
count by module hooks and, for the corrector, across a resume."""

import pytest
import torch
import torch.nn as nn

from dgflow_bench.models.corrected import CorrectedLogit
from dgflow_bench.refine.method_params import EVALUATION_KEYS
from dgflow_bench.training.corrector import train_corrector
from dgflow_bench.training.density_ratio import PASS_KEYS, finetune_logistic, make_heldout
from pass_hooks import Hooked

BATCH, STEPS, EVERY, HELD = 16, 5, 2, 12
# the hooks see backwards to parameters only (no input needs a gradient), which torch notes with a warning
pytestmark = pytest.mark.filterwarnings("ignore:Full backward hook is firing")


def normal_batch(n, gen):
    return torch.randn(n, 2, generator=gen)


def nets(seed=0):
    torch.manual_seed(seed)
    generator = nn.Linear(2, 2).requires_grad_(False)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    return generator, critic


def heldout_of(generator):
    real = torch.randn(HELD, 2, generator=torch.Generator().manual_seed(3))
    return make_heldout((real, lambda rows: rows), generator, normal_batch, seed=4)


def test_the_key_names_are_the_counters():
    assert PASS_KEYS == EVALUATION_KEYS


def test_logistic_finetune_counts_match_module_hooks_and_the_hand_count():
    generator, critic = nets()
    g_hooks, d_hooks = Hooked(generator), Hooked(critic)
    stats = finetune_logistic(critic, generator, real_batch=normal_batch, latent_batch=normal_batch, steps=STEPS,
                              batch_size=BATCH, lr=1e-3, betas=(0.5, 0.9), rng=torch.Generator().manual_seed(1),
                              heldout=heldout_of(generator), eval_every=EVERY, progress=False)
    counted = stats["network_evaluations"]
    scorings = 1 + len(range(EVERY, STEPS + 1, EVERY)) + (STEPS % EVERY != 0)  # step 0, every 2nd, the last
    assert counted == {"generator_forward": STEPS * BATCH + scorings * HELD, "generator_backward": 0,
                       "discriminator_forward": STEPS * 2 * BATCH + scorings * 2 * HELD,
                       "discriminator_backward": STEPS * 2 * BATCH}
    assert counted["generator_forward"] == g_hooks.forward
    assert counted["discriminator_forward"] == d_hooks.forward
    assert counted["discriminator_backward"] == d_hooks.backward


def test_corrector_counts_match_module_hooks_and_survive_a_resume(tmp_path):
    def run(steps, checkpoint):
        generator, critic = nets()
        _, corrector = nets(1)
        corrected = CorrectedLogit(critic.requires_grad_(False), corrector)
        hooks = Hooked(corrected.corrector), Hooked(corrected.base)
        stats = train_corrector(corrected, generator, real_batch=normal_batch, latent_batch=normal_batch,
                                steps=steps, batch_size=BATCH, lr=1e-2, betas=(0.5, 0.9),
                                rng=torch.Generator().manual_seed(5), heldout=heldout_of(generator),
                                eval_every=EVERY, progress=False, checkpoint_path=str(checkpoint), fingerprint="f",
                                checkpoint_every=2)
        return stats["network_evaluations"], hooks

    straight, (lam, phi) = run(6, tmp_path / "a.pt")
    # d = d_phi + d_lambda: every row goes through both; the backward reaches d_lambda only (d_phi is frozen)
    assert straight["discriminator_forward"] == lam.forward == phi.forward == 6 * 2 * BATCH + 4 * 2 * HELD
    assert straight["discriminator_backward"] == lam.backward == 6 * 2 * BATCH
    assert phi.backward == 0
    run(2, tmp_path / "b.pt")
    resumed, (lam_after, _) = run(6, tmp_path / "b.pt")
    assert resumed == straight  # the steps and scorings before the resume are counted too
    assert lam_after.forward < lam.forward  # ... although this process ran only the rest
