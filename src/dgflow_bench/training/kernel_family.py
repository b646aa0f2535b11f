"""MMDGAN and OCFGAN-GP as model families: the DGflow release's CNN decoder (models/release_cnn.py) trained
against a critic with a vector output (models/kernel_critics.py) by a kernel distance between feature
distributions (training/kernel_losses.py): MMD with a mixture of RBF kernels (Li et al. 2017) or the
characteristic-function distance with a gradient penalty (Ansari, Scarlett & Soh 2020). The critics give no
density ratio: these models are refined along another model's discriminator (d_phi, + d_lambda).

One generator step follows ``critic_steps`` critic steps; MMD-GAN's schedule runs ``critic_steps_heavy``
instead during the first ``heavy_until`` generator steps and every ``heavy_every`` (mmd_gan.py). Recipes:
the schema blocks mmdgan_model / ocfgan_model, with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass

from .family import ModelFamily

OBJECTIVES = ("mmd", "ecfd")


@dataclass(frozen=True)
class KernelGanFamily(ModelFamily):
    objective: str = "mmd"

    def build(self, arch: dict, data_info: dict) -> dict:
        from ..models.kernel_critics import MMDGANCritic, OCFGANCritic
        from ..models.release_cnn import ReleaseCNNDecoder

        size, channels = int(data_info["image_size"]), int(data_info["channels"])
        generator = ReleaseCNNDecoder(arch["z_dim"], isize=size, ngf=arch["ngf"], output="tanh", channels=channels)
        if self.objective == "mmd":
            critic = MMDGANCritic(isize=size, channels=channels, k=arch["critic_dim"], ndf=arch["ndf"], ngf=arch["ngf"])
        else:
            critic = OCFGANCritic(isize=size, channels=channels, k=arch["critic_dim"], ndf=arch["ndf"])
        # 'feature_critic', not 'critic': its vector output is no logit, so it stays out of the model file
        return {"generator": generator, "feature_critic": critic}

    def train(self, nets: dict, recipe: dict, *, real_batch, latent_batch, rng, checkpoint_path, fingerprint,
              progress=True, on_checkpoint=None) -> list[dict]:
        import torch

        from .loop import run_loop
        from . import kernel_losses as kl

        generator, critic = nets["generator"], nets["feature_critic"]
        modules = dict(nets)
        log_sigma = None
        critic_params = list(critic.parameters())
        if self.objective == "ecfd" and recipe["optimize_sigma"]:
            # OCFGAN-GP learns the frequency scale with the critic (cfgan.py lg_sigmas, zeros at start)
            log_sigma = torch.nn.Parameter(torch.zeros(1, critic.spec["k"], device=next(critic.parameters()).device))
            holder = torch.nn.Module()
            holder.log_sigma = log_sigma
            modules["log_sigma"] = holder
            critic_params.append(log_sigma)
        opt_g = torch.optim.RMSprop(generator.parameters(), lr=recipe["lr"])
        opt_d = torch.optim.RMSprop(critic_params, lr=recipe["lr"])
        b = recipe["batch_size"]

        def critic_loss(real, fake):
            if self.objective == "mmd":
                f_real, rec_real = critic.autoencode(real)
                f_fake, rec_fake = critic.autoencode(fake)
                return kl.mmd_gan_critic_loss(f_real, f_fake, real, fake, rec_real, rec_fake,
                                              sigmas=recipe["sigmas"], biased=True, lambda_ae_real=recipe["lambda_ae"],
                                              lambda_ae_fake=recipe["lambda_ae"], lambda_rg=recipe["lambda_rg"])
            gp = kl.ocfgan_gradient_penalty(critic, real, fake, generator=rng) if recipe["gp_weight"] else 0.0
            return kl.ocfgan_critic_loss(critic(real), critic(fake), gp, log_sigma=log_sigma, sigmas=recipe["sigmas"],
                                         n_freqs=recipe["n_freqs"], gp_weight=recipe["gp_weight"],
                                         lambda_rg=recipe["lambda_rg"], generator=rng)

        def generator_loss(real, fake):
            with torch.no_grad():
                f_real = critic(real)
            if self.objective == "mmd":
                return kl.mmd_gan_generator_loss(f_real, critic(fake), sigmas=recipe["sigmas"], biased=True,
                                                 lambda_rg=recipe["lambda_rg"])
            return kl.ocfgan_generator_loss(f_real, critic(fake), log_sigma=None if log_sigma is None else
                                            log_sigma.detach(), sigmas=recipe["sigmas"], n_freqs=recipe["n_freqs"],
                                            lambda_rg=recipe["lambda_rg"], generator=rng)

        def step(i: int) -> dict:
            heavy = i <= recipe["heavy_until"] or (recipe["heavy_every"] and i % recipe["heavy_every"] == 0)
            for _ in range(recipe["critic_steps_heavy"] if heavy else recipe["critic_steps"]):
                if recipe["clip"]:  # MMD-GAN clamps its encoder before every critic update
                    kl.clip_parameters_(critic.encoder, recipe["clip"])
                real = real_batch(b, rng)
                with torch.no_grad():
                    fake = generator(latent_batch(b, rng))
                d = critic_loss(real, fake)
                opt_d.zero_grad(set_to_none=True)
                d.loss.backward()
                opt_d.step()
            g = generator_loss(real_batch(b, rng), generator(latent_batch(b, rng)))
            opt_g.zero_grad(set_to_none=True)
            g.loss.backward()
            opt_g.step()
            return {"critic_loss": d.loss.detach(), "generator_loss": g.loss.detach()}

        return run_loop(modules=modules, optimizers={"generator": opt_g, "feature_critic": opt_d},
                        iterations=recipe["iterations"], step=step, rng=rng, checkpoint_path=checkpoint_path,
                        fingerprint=fingerprint, checkpoint_every=recipe["checkpoint_every"], progress=progress,
                        on_checkpoint=on_checkpoint)

    def record(self) -> dict:
        return {"objective": {"mmd": "MMD, mixture of RBF kernels (MMD-GAN)",
                              "ecfd": "characteristic-function distance + gradient penalty (OCFGAN-GP)"}[self.objective]}
