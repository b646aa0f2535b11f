"""The errors the CLI turns into a clean exit status, defined apart from the numerical code so that the CLI
(and every stage that needs no network: data, evaluate, report) starts without importing torch."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A model or checkpoint file that cannot be read as what it claims to be."""


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived: the state was checkpointed and the job should exit so that a rerun resumes."""


class RefinementDiverged(RuntimeError):
    """Raised when refined samples become NaN or Inf, so no table row is ever built from them."""

    def __init__(self, method: str, step: int, step_size: float, detail: str = "", *,
                 step_size_name: str = "step size"):
        """``step_size_name``: the method's knob (its module's ``step_size_name``), so the message says which
        key of the method's block to lower."""
        self.method, self.step, self.step_size, name = method, step, step_size, step_size_name
        msg = (
            f"{method} diverged at step {step} ({name}={step_size:g}): samples contain NaN or Inf. "
            f"Lower {name} in the method's config block and rerun."
        )
        super().__init__(msg + (f" {detail}" if detail else ""))
