"""The VAE as a model family: the generator is the decoder's mean (models/release_cnn.py with the sigmoid
output mapped to [-1, 1], as the DGflow release's t_cnn_vae), the encoder a training-only network
(models/vae.py), trained on the negative ELBO (training/vae_loss.py). No VAE training code is public: the
recipe is ours, and the schema block vae_model says where each default comes from."""

from __future__ import annotations

from dataclasses import dataclass

from .family import ModelFamily


@dataclass(frozen=True)
class VaeFamily(ModelFamily):
    def build(self, arch: dict, data_info: dict) -> dict:
        from ..models.release_cnn import ReleaseCNNDecoder
        from ..models.vae import VAEEncoder

        size, channels = int(data_info["image_size"]), int(data_info["channels"])
        decoder = ReleaseCNNDecoder(arch["z_dim"], isize=size, ngf=arch["ngf"], output="sigmoid", channels=channels)
        encoder = VAEEncoder(arch["z_dim"], isize=size, ndf=arch["ndf"], channels=channels)
        return {"generator": decoder, "encoder": encoder}

    def train(self, nets: dict, recipe: dict, *, real_batch, latent_batch, rng, checkpoint_path, fingerprint,
              progress=True, on_checkpoint=None) -> list[dict]:
        import torch

        from .loop import run_loop
        from .vae_loss import elbo_terms

        decoder, encoder = nets["generator"], nets["encoder"]
        params = list(encoder.parameters()) + list(decoder.parameters())
        optimizer = torch.optim.Adam(params, lr=recipe["lr"], betas=tuple(recipe["betas"]))

        def step(i: int) -> dict:
            terms = elbo_terms(encoder, decoder, real_batch(recipe["batch_size"], rng), rng,
                               likelihood=recipe["likelihood"], kl_weight=recipe["kl_weight"])
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            return {"loss": terms["loss"].detach(), "reconstruction": terms["recon"].detach(),
                    "kl": terms["kl"].detach()}

        # one optimiser over both nets, saved under the generator's role
        return run_loop(modules=nets, optimizers={"generator": optimizer}, iterations=recipe["iterations"],
                        step=step, rng=rng, checkpoint_path=checkpoint_path, fingerprint=fingerprint,
                        checkpoint_every=recipe["checkpoint_every"], progress=progress, on_checkpoint=on_checkpoint)

    def record(self) -> dict:
        return {"objective": "negative ELBO", "generator": "decoder mean, sigmoid output mapped to [-1, 1]"}
