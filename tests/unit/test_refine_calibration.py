"""The calibrators DRS and MH-GAN share (refine/calibration.py) against known answers: with real logits
d ~ N(1, 1) and generated d ~ N(0, 1) in equal numbers the true P(real | d) is sigmoid(d - 1/2); every fitted
kind must recover it on a grid, also from a mis-scaled logit. Isotonic is scikit-learn's, clipped as the
reference clips (1e-14), so its log odds stay finite; the passes of a fit are counted apart."""

import numpy as np
import pytest
import torch
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression

from dgflow_bench.refine.calibration import PROBABILITY_CLIP, Calibration, fit_calibration, fit_on, fit_platt
from dgflow_bench.refine.methods.drs import DRSParams
from dgflow_bench.refine.methods.mhgan import MHGANParams

from known_ratio import F64, base_latents, counts, gen_rng, linear_tanh_generator

M = 20_000
GRID = torch.linspace(-1.0, 2.0, 31, dtype=F64)  # where both sets have mass (|d - 1/2| < 1.5 sd)


def two_gaussians(m=M, seed=12):
    """Real logits N(1, 1), generated N(0, 1): the true log odds are d - 1/2."""
    rng = gen_rng(seed)
    return 1.0 + torch.randn(m, generator=rng, dtype=F64), torch.randn(m, generator=rng, dtype=F64)


def test_fit_platt_recovers_known_coefficients():
    # labels drawn from sigmoid(1.7 d - 0.4), d ~ N(0, 1.5^2), n = 20,000: the fit's standard errors (inverse
    # Fisher information) are 0.024 for a and 0.020 for b; tolerances ~4 standard errors
    rng = gen_rng(11)
    d = 1.5 * torch.randn(M, generator=rng, dtype=F64)
    label = torch.rand(M, generator=rng, dtype=F64) < torch.sigmoid(1.7 * d - 0.4)
    a, b = fit_platt(d[label], d[~label])
    assert isinstance(a, float) and isinstance(b, float)
    assert abs(a - 1.7) < 0.10 and abs(b + 0.4) < 0.08
    assert (a, b) == fit_platt(d[label], d[~label])  # deterministic


@pytest.mark.parametrize("kind,scale,tolerance", [
    ("platt", 1.0, 0.02), ("isotonic", 1.0, 0.05),  # isotonic: a step fit, error ~ m^(-1/3)
    ("platt", 3.0, 0.02), ("isotonic", 3.0, 0.05),  # a mis-scaled logit 3 d - 2: the same P(real | d)
])
def test_calibrators_recover_the_true_probability_on_a_grid(kind, scale, tolerance):
    real, fake = two_gaussians()
    calibration = fit_calibration(scale * real - 2, scale * fake - 2, kind)
    fitted = calibration.probability(scale * GRID - 2)
    truth = torch.sigmoid(GRID - 0.5)
    assert float((fitted - truth).abs().max()) < tolerance
    # the calibrated logit is the log odds of that probability
    torch.testing.assert_close(torch.sigmoid(calibration(scale * GRID - 2)), fitted, rtol=0, atol=1e-12)


def test_none_is_the_logit_as_given_and_so_wrong_when_d_is_miscalibrated():
    real, fake = two_gaussians()
    none = fit_calibration(real, fake, "none")
    assert none(GRID) is GRID and none.record() == {"kind": "none"}
    assert float((none.probability(GRID) - torch.sigmoid(GRID - 0.5)).abs().max()) > 0.1  # the fits above fix it


def test_isotonic_is_scikit_learns_fit_and_clips_zero_and_one_as_the_reference():
    real, fake = two_gaussians(2_000)
    calibration = fit_calibration(real, fake, "isotonic")
    reference = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        torch.sigmoid(torch.cat([real, fake])).numpy(), np.r_[np.ones(2_000), np.zeros(2_000)])
    # the reference fits on sigmoid(d): isotonic regression is invariant under that increasing map, so the
    # breakpoints and their values agree; between them ours interpolates linearly in d, theirs in sigmoid(d)
    knots = torch.from_numpy(calibration.isotonic.X_thresholds_)
    np.testing.assert_allclose(calibration.probability(knots).numpy(), reference.predict(torch.sigmoid(knots).numpy()),
                               rtol=0, atol=1e-12)
    probe = torch.linspace(-4, 5, 301, dtype=F64)
    np.testing.assert_allclose(calibration.probability(probe).numpy(), reference.predict(torch.sigmoid(probe).numpy()),
                               rtol=0, atol=1e-3)
    # outside the data the fit is 0 and 1 (n = 2,000 leaves pure ends): the log odds are clipped, finite
    ends = calibration.probability(torch.tensor([-10.0, 10.0], dtype=F64))
    assert ends.tolist() == [0.0, 1.0]
    c = calibration(torch.tensor([-10.0, 10.0], dtype=F64))
    reference_c = logit(np.clip([0.0, 1.0], PROBABILITY_CLIP, 1 - PROBABILITY_CLIP))  # mh.py:110, 114
    torch.testing.assert_close(c, torch.from_numpy(reference_c), rtol=1e-12, atol=0)
    assert -33 < float(c[0]) < -32 and 32 < float(c[1]) < 33
    assert c.dtype == F64 and calibration(probe.float()).dtype == torch.float32  # the caller's dtype


def test_isotonic_record_names_its_breakpoints():
    real, fake = two_gaussians(2_000)
    record = fit_calibration(real, fake, "isotonic").record()
    assert record["kind"] == "isotonic" and record["breakpoints"] > 2
    assert record["probability_range"] == [0.0, 1.0] and record["logit_range"][0] < record["logit_range"][1]
    assert record == fit_calibration(real, fake, "isotonic").record()  # deterministic
    assert record["sha256"] != fit_calibration(real + 0.1, fake, "isotonic").record()["sha256"]
    platt = fit_calibration(real, fake, "platt").record()
    assert set(platt) == {"kind", "a", "b"} and abs(platt["a"] - 1) < 0.1


def test_bad_kinds_and_inputs_are_refused():
    real, fake = two_gaussians(100)
    with pytest.raises(ValueError, match="unknown calibration 'beta'"):
        fit_calibration(real, fake, "beta")
    with pytest.raises(ValueError, match="non-finite"):
        fit_calibration(torch.tensor([float("nan")]), fake, "isotonic")
    with pytest.raises(ValueError, match="fit_calibration"):
        Calibration("platt")


def test_fit_on_counts_its_passes_and_fits_on_generator_samples():
    # real d ~ N(1, 1) against the prior N(0, 1) as data, identity logit: (a, b) ~ (1, -0.5) as above
    real = 1.0 + torch.randn(M, 1, generator=gen_rng(12), dtype=F64)
    identity = lambda x: x.reshape(-1)  # noqa: E731
    fit = fit_on(real, None, identity, gen_rng(13), kind="platt", prior="normal", latent_dim=1)
    a, b = fit.calibration.platt
    assert abs(a - 1.0) < 0.1 and abs(b + 0.5) < 0.1
    assert fit.evaluations == counts(df=2 * M)  # data space: no generator
    torch.testing.assert_close(fit.real_logits, real.reshape(-1), rtol=0, atol=0)
    # with a generator: G forwards for the generated half; none needs the real logits only
    n = 300
    gen = linear_tanh_generator()
    real_x = torch.tanh(base_latents(n, 2) @ torch.tensor([[1.0, -0.5, 0.3], [0.2, 0.8, -1.1]], dtype=F64) + 0.3)
    gen32 = lambda z: gen(z.to(F64))  # noqa: E731  (the prior draws come in the default dtype)
    logit = lambda x: x.sum(1)  # noqa: E731
    iso = fit_on(real_x, gen32, logit, gen_rng(14), kind="isotonic", prior="normal", latent_dim=2)
    assert iso.evaluations == counts(gf=n, df=2 * n) and iso.calibration.kind == "isotonic"
    none = fit_on(real_x, gen32, logit, gen_rng(14), kind="none", prior="normal", latent_dim=2)
    assert none.evaluations == counts(df=n) and none.calibration.kind == "none"


def test_prepare_fits_once_per_run_and_only_when_needed():
    real = 0.5 + 0.8 * torch.randn(500, 1, generator=gen_rng(3), dtype=F64)
    logit = lambda x: x.reshape(-1)  # noqa: E731
    for params in (DRSParams(calibration_size=400), MHGANParams(calibration_size=400)):
        assert params.calibration == "isotonic" and params.real_samples == 400  # the reference's default
        fitted = params.prepare(real, None, logit, gen_rng(4), prior="normal", latent_dim=1)
        assert fitted.fitted.calibration.kind == "isotonic" and fitted.real_samples == 0
        assert fitted.fitted.real_logits.numel() == 400  # calibration_size rows, not all 500
        assert fitted == params  # the fit is run-time state: the configuration is unchanged
        assert "fitted" not in params.as_dict() and "fitted" not in type(params).schema()["properties"]
    # nothing to fit: DRS without calibration, a hand-set Platt pair; MH-GAN's real start still needs rows
    assert DRSParams(calibration="none").real_samples == 0
    assert DRSParams(calibration="platt", platt=(1.0, 0.0)).real_samples == 0
    assert MHGANParams(calibration="none", start="base").real_samples == 0
    assert MHGANParams(calibration="none").real_samples == 2000
