"""`dgflow-bench finetune`: make the model's `finetuned` discriminator, a density-ratio estimator
d(x) ~ log mu(x) / rho_model(x), with the estimator its config picks (params['density_ratio']):

- logistic: the model's own critic fine-tuned with the logistic loss (real = 1, fake = 0);
- corrector: d = d_phi + d_lambda (docs/method.md §2), d_phi the frozen critic of another model file
  (``base_model_file``, the config's base_model on the same dataset), d_lambda trained on the sum.

Either way the output is a model file whose 'critic' loads through models.store.load_model_file, and beside
it ``<name>.validation.json``: the held-out logistic loss and accuracy at every evaluated step and the step
whose weights were kept (the lowest held-out loss; training/density_ratio.py). The job's record (the
``.config.json`` beside the model file) holds ``network_evaluations``: the samples through each network pass
of the whole fit, validation included (density_ratio.PassTally), by refine/common.Counter's key names."""

from __future__ import annotations

import copy
import sys

from ..catalog import DATASETS, SUITES
from ..io import drop_resume_state, sha256_file, sidecar_path, write_json, write_resolved_config
from ..models.corrected import CorrectedLogit, resize_for
from ..models.store import load_model_file, save_model_file
from ..runtime import fingerprint, latent_sampler, resolve_device, seeded_generator
from ..training.corrector import train_corrector
from ..training.density_ratio import finetune_logistic, make_heldout
from .training_data import load_split_training_data


def _log(message: str) -> None:
    print(f"finetune: {message}", file=sys.stderr, flush=True)


def run(dataset: str, model_file: str, data: str, params: dict, out: str, device: str, progress: bool,
        base_model_file: str | None = None, state: str | None = None) -> None:
    """``state``: the corrector's full-state checkpoint path (resumed when it matches); the short logistic
    fine-tune keeps none."""
    kind = params["density_ratio"]["kind"]
    if kind == "corrector" and base_model_file is None:
        raise ValueError("density_ratio kind 'corrector' needs --base-model-file (the model file whose critic is "
                         "the frozen d_phi)")
    if kind not in ("logistic", "corrector"):
        raise ValueError(f"unknown density_ratio kind {kind!r}; use 'logistic' or 'corrector'")
    dev = resolve_device(device)
    loaded = load_model_file(model_file)
    generator = loaded["generator"].to(dev)
    settings = params if kind == "logistic" else params["density_ratio"]
    real_batch, info, real_heldout = load_split_training_data(
        dataset, data, dev, holdout=settings["validation_size"], seed=params["seed"])
    latent = loaded["latent"]
    latent_batch = latent_sampler(latent["prior"], latent["dim"], dev)
    heldout = make_heldout(real_heldout, generator, latent_batch, seed=params["seed"] + 1)
    _log(f"read {model_file} and {data}; {len(real_heldout[0])} real + {len(real_heldout[0])} generated samples "
         f"held out for validation, evaluated every {settings['eval_every']} of {settings['steps']} steps")
    rng = seeded_generator(params["seed"], dev)
    if kind == "logistic":
        discriminator = copy.deepcopy(loaded["critic"]).to(dev).train()
        stats = finetune_logistic(
            discriminator, generator, real_batch=real_batch, latent_batch=latent_batch, steps=params["steps"],
            batch_size=params["batch_size"], lr=params["lr"], betas=tuple(params["betas"]), rng=rng,
            heldout=heldout, eval_every=params["eval_every"], progress=progress, log=_log,
        )
        meta = {"kind": "finetuned-logistic", **stats}
    else:
        checkpoint = {"checkpoint_path": state, "checkpoint_every": params["density_ratio"]["checkpoint_every"],
                      "fingerprint": fingerprint(params, *(sha256_file(f) for f in (data, model_file, base_model_file)),
                                                 str(dev))}
        published = _published_corrector(params["density_ratio"], loaded["meta"], dataset)
        discriminator, stats = _train_corrector(params["density_ratio"], base_model_file, info, generator,
                                                real_batch, latent_batch, rng, dev, progress, checkpoint, heldout,
                                                published)
        meta = {"kind": "corrector", "base_model_file": base_model_file, **stats}
        if published is not None:
            meta["published_corrector"] = loaded["meta"]["files"]["corrector"]
    save_model_file(out, critic=discriminator.cpu(), meta=meta)
    write_json(sidecar_path(out, ".validation.json"), {**stats["validation"], "heldout_real_rows": len(real_heldout[0])})
    _log(f"kept step {stats['final']['step']} (lowest held-out logistic loss "
         f"{stats['final'].get('heldout_logistic_loss', float('nan')):.4f}); wrote {out}")
    # the fit's counted passes (training/density_ratio.PassTally, refine/common.Counter's key names): the
    # evaluate stage charges them, amortised, to the refined samples of every run using this estimator
    write_resolved_config(out, "finetune", params, model_file=model_file, base_model_file=base_model_file,
                          data=data, result=stats["final"], network_evaluations=stats["network_evaluations"])
    drop_resume_state(state)


def _published_corrector(estimator: dict, model_meta: dict, dataset: str):
    """The imported model's own published d_lambda (dgflow-release's *_DRC.pth), or None: train one."""
    record = (model_meta.get("files") or {}).get("corrector")
    if record is None or not estimator.get("use_published", True):
        return None
    importer = SUITES[DATASETS[dataset].suite].importers.get(model_meta.get("source"))
    if importer is None or importer.load_corrector is None:
        return None
    _log(f"d_lambda: the published corrector {record['file']} (sha256 {record['sha256'][:12]}...), not trained")
    return importer.load_corrector(record["file"], dataset, model_meta["model"])


def _train_corrector(estimator: dict, base_model_file: str, info: dict, generator, real_batch, latent_batch, rng,
                     dev, progress: bool, checkpoint: dict, heldout, published=None) -> tuple[CorrectedLogit, dict]:
    """d_phi + d_lambda: d_lambda trained here, or ``published`` as is (only scored on the held-out data)."""
    key = f"models.<model>.density_ratio.base_model ({estimator['base_model']})"
    d_phi = load_model_file(base_model_file, config_key=key).get("critic")
    if d_phi is None:
        raise ValueError(f"{base_model_file} holds no critic to use as d_phi; check {key}")
    # a d_phi of another size (the release's STL10 32 px rows: 48 px) sees bilinearly resized images, as does
    # d_lambda, a copy of it
    resize = resize_for(d_phi, info["image_size"]) if "image_size" in info else None
    if resize is not None:
        _log(f"d_phi takes {d_phi.image_size} px images, the data has {info['image_size']} px: d_phi and d_lambda "
             "see them resized bilinearly (align_corners=True)")
    if published is not None:
        if getattr(published, "image_size", None) != d_phi.image_size:
            raise ValueError(f"the published corrector takes {published.image_size} px images, d_phi from "
                             f"{base_model_file} {d_phi.image_size} px: d_phi must be the discriminator it was "
                             "trained with (models.<model>.d_phi_dataset, density_ratio.base_model)")
        corrected = CorrectedLogit(d_phi, published, resize).to(dev)
        stats = train_corrector(corrected, generator, real_batch=real_batch, latent_batch=latent_batch, steps=0,
                                batch_size=1, lr=1.0, betas=(0.0, 0.0), rng=rng, heldout=heldout, progress=False,
                                init="keep", log=_log)
        return corrected.eval(), stats
    # d_lambda: same architecture, starting from d_phi's features; train_corrector zeroes its last layer, so
    # the sum starts exactly at d_phi and only learns what d_phi gets wrong about this model.
    corrected = CorrectedLogit(d_phi, copy.deepcopy(d_phi).requires_grad_(True), resize).to(dev)
    stats = train_corrector(
        corrected, generator, real_batch=real_batch, latent_batch=latent_batch, steps=estimator["steps"],
        batch_size=estimator["batch_size"], lr=estimator["lr"], betas=tuple(estimator["betas"]), rng=rng,
        heldout=heldout, eval_every=estimator["eval_every"], progress=progress, init="zero", log=_log, **checkpoint,
    )
    return corrected.eval(), stats
