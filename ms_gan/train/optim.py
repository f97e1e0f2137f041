"""Adam as a MindSpore Cell, with the recipes' exact semantics.

MindSpore's ``nn.Adam`` rejects ``beta1 = 0`` (seed 004 uses betas (0, 0.9)) and
places epsilon the TensorFlow way. This Adam accepts any beta in [0, 1) and puts
epsilon where the recipe's framework does:

* ``"torch"``: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
* ``"tf"`` (TensorFlow, Keras, MindSpore): p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

Both are the same update with epsilon scaled by sqrt(1 - b2^t), so one code path
serves both. State (m, v, step) lives in Parameters named ``<prefix>.m.<param>``,
``<prefix>.v.<param>`` and ``<prefix>.step`` so it is checkpointed with the networks.
"""
import mindspore as ms
from mindspore import nn, ops


class Adam(nn.Cell):
    """Adam over ``params`` (a list of Parameters). Call it with the gradients tuple."""

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8, eps_mode="torch", prefix="adam"):
        super().__init__(auto_prefix=False)
        if eps_mode not in ("torch", "tf"):
            raise ValueError(f"eps_mode must be 'torch' or 'tf', got {eps_mode!r}")
        self.params = ms.ParameterTuple(params)
        self.m = ms.ParameterTuple([ms.Parameter(ops.zeros_like(p), name=f"{prefix}.m.{p.name}",
                                                 requires_grad=False) for p in params])
        self.v = ms.ParameterTuple([ms.Parameter(ops.zeros_like(p), name=f"{prefix}.v.{p.name}",
                                                 requires_grad=False) for p in params])
        self.step = ms.Parameter(ms.Tensor(0, ms.int32), name=f"{prefix}.step", requires_grad=False)
        self.lr = float(lr)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.torch_eps = eps_mode == "torch"
        self.hyper_map = ops.HyperMap()
        # MindSpore's fused ApplyAdam kernel (one kernel per parameter instead of ~10
        # elementwise ones; ~30% faster iterations on small nets, bench/NOTES.md). Its
        # formula is the TF form above; the PyTorch form is the same with eps scaled.
        self.apply_adam = ops.Adam()

    def state_parameters(self):
        """Every Parameter that makes up the optimizer state (for checkpoints)."""
        return list(self.m) + list(self.v) + [self.step]

    def construct(self, grads):
        step = self.step + 1
        ops.assign(self.step, step)
        t = ops.cast(step, ms.float32)
        beta1_power = ops.pow(self.beta1, t)
        beta2_power = ops.pow(self.beta2, t)
        eps_t = self.eps * ops.sqrt(1.0 - beta2_power) if self.torch_eps else self.eps
        return self.hyper_map(ops.partial(_adam_update, self.apply_adam, beta1_power, beta2_power, self.lr,
                                          self.beta1, self.beta2, eps_t),
                              self.params, self.m, self.v, grads)


def _adam_update(apply_adam, beta1_power, beta2_power, lr, beta1, beta2, eps, param, m, v, grad):
    apply_adam(param, m, v, beta1_power, beta2_power, lr, beta1, beta2, eps, grad)
    return True
