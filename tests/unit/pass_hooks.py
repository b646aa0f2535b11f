"""An independent count of the rows a module sees, by its own forward / full-backward hooks: the tests of the
refinement methods' and the density-ratio fits' pass counters check those counters against it."""


class Hooked:
    """Rows through ``module`` forward and backward, counted apart from any counter under test."""

    def __init__(self, module):
        self.forward = self.backward = 0
        module.register_forward_hook(lambda m, inputs, out: self._add("forward", inputs[0]))
        module.register_full_backward_hook(lambda m, grad_in, grad_out: self._add("backward", grad_out[0]))

    def _add(self, attr, tensor):
        setattr(self, attr, getattr(self, attr) + tensor.shape[0])
