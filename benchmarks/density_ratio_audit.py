"""Audit of the density ratios behind the rejection baselines on the 2-D suite (docs/rejection-audit.md).

On 25Gaussians and Swissroll p_data is known in closed form (toy2d_densities.py). For each discriminator
(raw critic, fine-tuned d) and calibration (none, Platt, isotonic as the MH-GAN reference fits it) this
measures, on a finished run's models:

1. how well the calibrated logit c estimates the true log-ratio r = log p_data - log p_G, with log p_G a
   binned KDE of 10^6 generator samples (its own error measured on the data, whose density is known, and at
   generator points against the exact change of variables): on real points the correlation and the std of
   c - r, on generator points the rank correlation and the slope of r on c (1 = right scale);
2. the law each MH-GAN target implies without p_G: independence MH with odds exp(c) converges to
   p_G exp(c) / Z, so weights exp(c) on generator samples give its mass per mode (25Gaussians, against 1/25
   each), its mass off the data (farther than 4 sigma) and its energy distance to the data; DRS's law is
   p_G times its acceptance probability;
3. MH-GAN chains as the pipeline runs them (K = 640 from G(z0)), simulated on one shared proposal stream per
   dataset, and the project's own DRS (refine/methods/drs.run_drs, on d uncalibrated) with gamma 0 and the reference's 95th
   percentile;
4. the Platt slope's spread over fit draws of the pipeline's size (2,000 + 2,000) and at 20 times that;
5. calibration curves: binned P(real | d) on fresh points against each fitted calibrator (figure).

Every sample is fresh: generator latents and exact data draws of this script's seeds, the calibration fit
on rows of the training array (as the pipeline's fit), never the evaluation held-out split.

    python benchmarks/density_ratio_audit.py --results results --out docs/figures

writes <out>/rejection-audit.json, <out>/rejection-calibration.png and <out>/rejection-modes.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit, logit as logit_fn
from scipy.stats import spearmanr
from sklearn.isotonic import IsotonicRegression

from dgflow_bench.data.toy2d import MODES_25G, STD_25G, sample_toy2d
from dgflow_bench.metrics.toy2d import _high_quality_mask, energy_distance, high_quality_fraction
from dgflow_bench.models.store import load_model_file
from dgflow_bench.refine.calibration import fit_platt
from dgflow_bench.refine.methods.drs import DRSParams, run_drs
from dgflow_bench.runtime import latent_sampler
from toy2d_densities import GridKDE, log_p_data, select_bandwidth

DATASETS = ("25gaussians", "swissroll")
N_KDE, N_REAL, N_GEN, N_ENERGY, N_FIT, K, CHAINS = 1_000_000, 20_000, 50_000, 8_000, 2_000, 640, 2_000
SEED = 20_231  # every draw of this script derives from it: latents, exact data, fit rows, uniforms


# ------------------------------------------------------------------ networks and draws
@torch.no_grad()
def generate(generator, latent: dict, n: int, seed: int) -> np.ndarray:
    g, draw = torch.Generator().manual_seed(seed), latent_sampler(latent["prior"], latent["dim"], torch.device("cpu"))
    return np.concatenate([generator(draw(min(65536, n - s), g)).numpy() for s in range(0, n, 65536)]).astype(np.float64)


@torch.no_grad()
def scores(net, x: np.ndarray) -> np.ndarray:
    t = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([net(c).reshape(-1) for c in t.split(65536)]).double().numpy()


def training_rows(data_file: Path, n: int, seed: int) -> np.ndarray:
    with np.load(data_file, allow_pickle=False) as data:
        train = data["train"]
    return train[np.random.default_rng(seed).choice(len(train), n, replace=False)].astype(np.float64)


# ------------------------------------------------------------------ calibrations: d -> log-odds c
def calibrations(d_real: np.ndarray, d_fake: np.ndarray) -> dict:
    """{name: (c(d), facts)}. isotonic: scikit-learn's IsotonicRegression on sigmoid(d) with y in [0, 1] and
    out_of_bounds='clip', as uber-research/metropolis-hastings-gans (41857c9) mhgan/classification.py:75-78
    fits it; its 0 and 1 become log-odds -inf and +inf, the reference's odds 0 and infinity."""
    a, b = fit_platt(torch.as_tensor(d_real), torch.as_tensor(d_fake))
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(expit(np.concatenate([d_real, d_fake])), np.r_[np.ones(len(d_real)), np.zeros(len(d_fake))])
    levels = np.unique(iso.predict(expit(np.concatenate([d_real, d_fake]))))

    def isotonic(d):
        with np.errstate(divide="ignore"):
            return logit_fn(iso.predict(expit(d.reshape(-1)))).reshape(d.shape)

    return {"none": (lambda d: d, {}),
            "platt": (lambda d: a * d + b, {"a": a, "b": b}),
            "isotonic": (isotonic, {"levels": int(len(levels)), "top_level": float(levels[-1]),
                                    "bottom_level": float(levels[0])})}


def target_weights(c: np.ndarray) -> np.ndarray:
    """Normalised weights of the law p_G exp(c) / Z on generator samples with log-odds c. Where some c is +inf
    (isotonic P = 1), the reference's chain (mhgan/mh.py:63-71, fmin on nan; mh.py:171) never leaves those
    points once there and moves freely among them: the law is p_G restricted to {c = +inf}."""
    w = np.isposinf(c).astype(np.float64) if np.isposinf(c).any() else np.exp(c - c[np.isfinite(c)].max())
    return w / w.sum()


def mode_shares(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """25Gaussians: the weighted share of each mode (points within 4 sigma of its centre) and off the modes."""
    dist = np.sqrt(((x[:, None, :] - np.asarray(MODES_25G)[None]) ** 2).sum(-1))
    near, idx = dist.min(1) <= 4 * STD_25G, dist.argmin(1)
    shares = np.bincount(idx[near], weights=w[near], minlength=25)
    return shares, float(1 - shares.sum())


def weighted_energy(x: np.ndarray, w: np.ndarray, y: np.ndarray) -> float:
    """Energy distance between the weighted law sum_i w_i delta(x_i) (sum w = 1) and the sample y: the
    V-statistic in x (its bias is about -E|X-X'| / ESS) and the U-statistic in y."""
    def mean_dist(a, wa, b, wb):
        return sum(float(wa[s:s + 1024] @ np.sqrt(((a[s:s + 1024, None] - b[None]) ** 2).sum(-1)) @ wb)
                   for s in range(0, len(a), 1024))

    m, u = len(y), np.full(len(y), 1 / len(y))
    return 2 * mean_dist(x, w, y, u) - mean_dist(x, w, x, w) - mean_dist(y, u, y, u) * m / (m - 1)


def versus_truth(c_real: np.ndarray, r_real: np.ndarray, c_fake: np.ndarray, r_fake: np.ndarray) -> dict:
    """How c tracks r. On real points (where the target's mass should be) the constant part of c - r is
    free (it cancels in the target), so the error is the std of c - r. On generator points r reaches -300
    off the data, which no bounded c need follow: Spearman's rank correlation, and the least-squares slope of
    r on c with r clipped at -30 (weight e^-30: nothing)."""
    out = {}
    ok = np.isfinite(c_real)
    out["real_corr"] = float(np.corrcoef(c_real[ok], r_real[ok])[0, 1])
    out["real_error_std"] = float(np.std(c_real[ok] - r_real[ok]))
    ok = np.isfinite(c_fake)
    rc = np.maximum(r_fake[ok], -30.0)
    out["fake_spearman"] = float(spearmanr(c_fake[ok], r_fake[ok]).correlation)
    out["fake_corr_clipped"] = float(np.corrcoef(c_fake[ok], rc)[0, 1])
    out["fake_slope_r_on_c_clipped"] = float(np.polyfit(c_fake[ok], rc, 1)[0])
    out["infinite_share"] = float(1 - ok.mean())
    return out


def change_of_variables_log_density(generator, z: torch.Tensor, prior: str) -> np.ndarray:
    """log p_G(G(z)) = log p_z(z) - log |det J_G(z)|: exact where G is one-to-one (a 2-D leaky-ReLU MLP is
    piecewise linear; where it folds, the sum over preimages is larger, so this is a lower bound)."""
    jac = torch.cat([torch.func.vmap(torch.func.jacrev(lambda v: generator(v[None])[0]))(c) for c in z.split(8192)])
    log_pz = np.log(0.25) if prior == "uniform" else (-0.5 * (z ** 2).sum(1) - np.log(2 * np.pi)).double().numpy()
    return log_pz - torch.log(torch.abs(torch.linalg.det(jac.double()))).numpy()


# ------------------------------------------------------------------ MH-GAN chains, shared proposals
def mh_chains(c_start: np.ndarray, c_prop: np.ndarray, log_u: np.ndarray) -> np.ndarray:
    """Final state index per chain (-1: the start) of independence MH chains, accepting when
    c_cur <= c_new - log u (the reference's test OR_cur <= OR_new / u, mhgan/mh.py:171, which also moves
    between two +inf or two -inf states)."""
    state, cur = np.full(c_start.shape, -1), c_start.copy()
    for k in range(c_prop.shape[0]):
        accept = cur <= c_prop[k] - log_u[k]
        state = np.where(accept, k, state)
        cur = np.where(accept, c_prop[k], cur)
    return state


# ------------------------------------------------------------------ one dataset
def audit(dataset: str, results: Path) -> tuple[dict, dict]:
    folder = results / "models" / dataset / "wgan-gp" / "trained"
    model = load_model_file(folder / "model.pt")
    gen, latent = model["generator"].requires_grad_(False), model["latent"]
    nets = {"raw": model["critic"].requires_grad_(False),
            "finetuned": load_model_file(folder / "disc-finetuned.pt")["critic"].requires_grad_(False)}
    rng = np.random.default_rng(SEED)
    real = sample_toy2d(dataset, N_REAL, rng).astype(np.float64)  # fresh exact draws
    reference = sample_toy2d(dataset, 5_000, rng).astype(np.float64)  # energy distances are taken to these
    z_fake = latent_sampler(latent["prior"], latent["dim"], torch.device("cpu"))(N_GEN, torch.Generator().manual_seed(SEED + 1))
    fake = gen(z_fake).double().numpy()

    # log p_G: a binned KDE (bandwidth by held-out likelihood), checked at generator points against the exact
    # change of variables, and on the data (whose density is known) by the same KDE of 10^6 data draws
    pool = generate(gen, latent, N_KDE, SEED + 2)
    h, h_scores = select_bandwidth(pool, generate(gen, latent, 20_000, SEED + 3))
    kde_g = GridKDE(pool, h)
    log_pg_cov = change_of_variables_log_density(gen, z_fake, latent["prior"])
    kde_err = GridKDE(sample_toy2d(dataset, N_KDE, rng).astype(np.float64), h).log_density(real) - log_p_data(dataset, real)
    cov_err = kde_g.log_density(fake) - log_pg_cov
    log_pd_fake = log_p_data(dataset, fake)
    r_real = log_p_data(dataset, real) - kde_g.log_density(real)
    r_fake = log_pd_fake - kde_g.log_density(fake)
    r_fake_cov = log_pd_fake - log_pg_cov
    out = {"kde": {"bandwidth": h, "heldout_loglik": h_scores, "outside_box": kde_g.outside,
                   "data_kde_error_mean": float(kde_err.mean()), "data_kde_error_std": float(kde_err.std()),
                   "minus_change_of_variables_median": float(np.median(cov_err)),
                   "minus_change_of_variables_std": float(cov_err.std())},
           "true_ratio": {"fake_share_r_below_-10": float(np.mean(r_fake_cov < -10)),
                          "fake_r_percentiles_1_10_50_90_99": np.percentile(r_fake_cov, [1, 10, 50, 90, 99]).tolist(),
                          "bayes_logistic_loss_kde": float(np.mean(np.logaddexp(0, -r_real)) + np.mean(np.logaddexp(0, r_fake)))},
           "estimators": {}, "platt_spread": {}}
    fit_real = training_rows(results / "data" / f"{dataset}.npz", N_FIT, SEED + 4)
    fit_fake = generate(gen, latent, N_FIT, SEED + 5)
    sub = slice(0, N_ENERGY)  # the weighted energy's points (its cost grows as their square)

    # the chains' shared stream: K proposals per chain, the starts G(z0), one uniform per proposal
    starts = generate(gen, latent, CHAINS, SEED + 6)
    props = generate(gen, latent, K * CHAINS, SEED + 7).reshape(K, CHAINS, 2)
    log_u = np.log(rng.uniform(size=(K, CHAINS)))
    hq_fake = _hq_mask(fake, dataset)

    curves = {}
    for dname, net in nets.items():
        d_real, d_fake = scores(net, real), scores(net, fake)
        cal = calibrations(scores(net, fit_real), scores(net, fit_fake))
        d_start, d_prop = scores(net, starts), scores(net, props.reshape(-1, 2)).reshape(K, CHAINS)
        curves[dname] = {"d_real": d_real, "d_fake": d_fake, "cal": cal}
        for cname, (fn, facts) in cal.items():
            c_real, c_fake = fn(d_real), fn(d_fake)
            w = target_weights(c_fake)
            finite = np.isfinite(c_real).all() and np.isfinite(c_fake).all()
            entry = {"facts": facts, "d_range_on_fake_1_99": np.percentile(d_fake, [1, 99]).tolist(),
                     "logistic_loss": float(np.mean(np.logaddexp(0, -c_real)) + np.mean(np.logaddexp(0, c_fake)))
                     if finite else None,
                     "vs_true": versus_truth(c_real, r_real, c_fake, r_fake),
                     "target": {"ess": float(1 / np.sum(w ** 2)), "off_data_mass": float(w @ (1 - hq_fake)),
                                "energy": weighted_energy(fake[sub], w[sub] / w[sub].sum(), reference)
                                if w[sub].sum() > 0 else None}}
            if dataset == "25gaussians":
                shares, off = mode_shares(fake, w)
                entry["target"].update({"mode_shares": (shares / shares.sum()).tolist(), "off_modes": off,
                                        "modes_below_0.1_share": int(np.sum(shares / shares.sum() < 0.1 / 25)),
                                        "tv_to_uniform": float(0.5 * np.abs(shares / shares.sum() - 1 / 25).sum())})
            final = mh_chains(fn(d_start), fn(d_prop), log_u)
            xs = np.where((final < 0)[:, None], starts, props[np.maximum(final, 0), np.arange(CHAINS)])
            entry["chains"] = {"energy": energy_distance(xs, reference, unbiased=True),
                               "hq_pct": 100 * high_quality_fraction(xs, dataset), "never_moved": int(np.sum(final < 0))}
            out["estimators"][f"{dname}/{cname}"] = entry
        # the Platt slope over fit draws of the pipeline's size, and of 20 times it
        out["platt_spread"][dname] = {str(m): [fit_platt(torch.as_tensor(scores(net, sample_toy2d(dataset, m, rng))),
                                                         torch.as_tensor(scores(net, generate(gen, latent, m, SEED + 100 + i))))[0]
                                               for i in range(reps)] for m, reps in ((N_FIT, 10), (20 * N_FIT, 3))}
    if dataset == "25gaussians":  # the generator's own mode shares and the fine-tuned d's mean per mode
        shares, _ = mode_shares(fake, np.full(len(fake), 1 / len(fake)))
        near = _nearest_mode(fake)
        d_mode = np.array([curves["finetuned"]["d_fake"][(near == k) & (hq_fake > 0)].mean() for k in range(25)])
        out["generator_modes"] = {"shares": (shares / shares.sum()).tolist(), "finetuned_d_mean": d_mode.tolist(),
                                  "corr_log_share_vs_d": float(np.corrcoef(np.log(shares), d_mode)[0, 1])}
    out["platt_on_true_ratio"] = fit_platt(torch.as_tensor(np.maximum(r_real, -700)), torch.as_tensor(np.maximum(r_fake, -700)))
    out["base"] = {"energy": energy_distance(starts, reference, unbiased=True),
                   "hq_pct": 100 * high_quality_fraction(starts, dataset), "off_data_mass": float(1 - hq_fake.mean())}
    w_true = target_weights(np.maximum(r_fake_cov, -700.0))
    out["true_target"] = {"energy": weighted_energy(fake[sub], w_true[sub] / w_true[sub].sum(), reference),
                          "ess": float(1 / np.sum(w_true ** 2))}
    out["drs"] = _drs(gen, latent, nets["finetuned"], reference, dataset)
    return out, curves


def _hq_mask(x: np.ndarray, dataset: str) -> np.ndarray:
    """1 where a point is within 4 sigma of the clean data (the table's HQ rule, per point), else 0."""
    return _high_quality_mask(x, dataset).astype(np.float64)


def _nearest_mode(x: np.ndarray) -> np.ndarray:
    return np.sqrt(((x[:, None, :] - np.asarray(MODES_25G)[None]) ** 2).sum(-1)).argmin(1)


def _drs(gen, latent, net, reference, dataset) -> dict:
    """The project's DRS on the fine-tuned d, exact (gamma 0) and with the reference's 95th-percentile shift."""
    out = {}
    for name, pct in (("gamma0", None), ("pct95", 95.0)):
        z0 = latent_sampler(latent["prior"], latent["dim"], torch.device("cpu"))(CHAINS, torch.Generator().manual_seed(SEED + 6))
        res = run_drs(z0, gen, net, DRSParams(gamma_percentile=pct, calibration="none", snapshot_at=(), max_proposals_per_sample=1000), torch.Generator().manual_seed(SEED + 8),
                      prior=latent["prior"])
        x = res.snapshots[max(res.snapshots)].double().numpy()
        out[name] = {"energy": energy_distance(x, reference, unbiased=True), "hq_pct": 100 * high_quality_fraction(x, dataset),
                     **{k: res.info[k] for k in ("acceptance_rate", "proposals_per_sample", "gamma", "max_logit",
                                                 "filled_without_acceptance")}}
    return out


# ------------------------------------------------------------------ figures and report
def calibration_figure(curves: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for row, dataset in enumerate(DATASETS):
        for col, dname in enumerate(("raw", "finetuned")):
            ax, cur = axes[row, col], curves[dataset][dname]
            d = np.concatenate([cur["d_real"], cur["d_fake"][:N_REAL]])
            y = np.r_[np.ones(N_REAL), np.zeros(N_REAL)]
            edges = np.quantile(d, np.linspace(0, 1, 31))
            idx = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, 29)
            centre = np.array([d[idx == i].mean() for i in range(30)])
            share = np.array([y[idx == i].mean() for i in range(30)])
            err = np.sqrt(share * (1 - share) / np.bincount(idx, minlength=30))
            ax.errorbar(centre, share, err, fmt="o", ms=3, color="black", label="binned P(real | d), fresh points")
            grid = np.linspace(edges[0], edges[-1], 400)
            a, b = cur["cal"]["platt"][1]["a"], cur["cal"]["platt"][1]["b"]
            ax.plot(grid, expit(grid), color="tab:gray", ls=":", label="none: sigmoid(d)")
            ax.plot(grid, expit(a * grid + b), color="tab:red", label=f"Platt: sigmoid({a:.2g} d {b:+.2g})")
            ax.plot(grid, expit(cur["cal"]["isotonic"][0](grid)), color="tab:blue", drawstyle="steps-post", label="isotonic")
            ax.set_title(f"{dataset}, {dname} d", fontsize=10)
            ax.set_xlabel("d (logit)")
            ax.set_ylabel("P(real | d)")
            ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def modes_figure(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    est = report["25gaussians"]["estimators"]
    styles = {"finetuned/none": ("tab:gray", "o"), "finetuned/platt": ("tab:red", "s"),
              "finetuned/isotonic": ("tab:blue", "^"), "raw/platt": ("tab:orange", "D")}
    for name, (colour, marker) in styles.items():
        shares = 25 * np.asarray(est[name]["target"]["mode_shares"])
        ax.plot(np.arange(25), shares, marker=marker, color=colour, ls="-", lw=0.8, ms=4,
                label=f"{name} (TV {est[name]['target']['tv_to_uniform']:.2f})")
    ax.axhline(1.0, color="black", lw=1, label="p_data: 1/25 each")
    ax.set_yscale("log")
    ax.set_xlabel("mode (row-major over the 5 x 5 grid)")
    ax.set_ylabel("25 x share of the implied target")
    ax.set_title("25Gaussians: each MH-GAN target's mass per mode, from weights exp(c) on generator samples",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="results folder of a finished default-suite run")
    parser.add_argument("--out", default="docs/figures", help="folder for the JSON and the two figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report, curves = {}, {}
    for dataset in DATASETS:
        report[dataset], curves[dataset] = audit(dataset, Path(args.results))
        r = report[dataset]
        print(f"{dataset}: base energy {1e3 * r['base']['energy']:.2f}e-3, true target {1e3 * r['true_target']['energy']:.2f}e-3"
              f" (ess {r['true_target']['ess']:.0f}); KDE {r['kde']}", flush=True)
        for name, e in r["estimators"].items():
            v, t = e["vs_true"], e["target"]
            energy = "-" if t["energy"] is None else f"{1e3 * t['energy']:7.2f}e-3"
            print(f"  {name:19s} {v}\n    target energy {energy} ess {t['ess']:6.0f} off {t['off_data_mass']:.3f}"
                  f" tv {t.get('tv_to_uniform', float('nan')):.3f}  chains {1e3 * e['chains']['energy']:7.2f}e-3"
                  f" hq {e['chains']['hq_pct']:.1f}  {e['facts']}", flush=True)
        print(f"  platt spread {r['platt_spread']}  platt on true r {r['platt_on_true_ratio']}  drs {r['drs']}", flush=True)
    tmp = out / "rejection-audit.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out / "rejection-audit.json")
    calibration_figure(curves, out / "rejection-calibration.png")
    modes_figure(report, out / "rejection-modes.png")


if __name__ == "__main__":
    main()
