"""Spectral normalisation of a layer's weight, as ``torch.nn.utils.spectral_norm`` does it.

:class:`SpectralNorm` wraps an ``nn.Conv2d``, ``nn.Conv2dTranspose`` or ``nn.Dense`` and
runs the layer's own op with ``W / sigma(W)``. sigma is estimated by power iteration
with persistent vectors u, v that are updated only in training mode
(``cell.set_train(True)``; note that MindSpore cells start in eval mode, unlike torch).

Parameter names (relative to the SpectralNorm cell; MindSpore prefixes the parent path),
with the matching ``torch.nn.utils.spectral_norm`` state-dict keys:

====================  ==================  =============================================
MindSpore             torch               meaning
====================  ==================  =============================================
``layer.weight``      ``weight_orig``     raw weight (trainable)
``layer.bias``        ``bias``            bias, if the layer has one (trainable)
``weight_u``          ``weight_u``        left singular vector estimate, shape (rows,)
``weight_v``          ``weight_v``        right singular vector estimate, shape (cols,)
``sigma``             (none)              last sigma, shape (1,), for logging only
====================  ==================  =============================================

u, v and sigma have ``requires_grad=False``: optimizers skip them, checkpoints keep them.
The weight matrix has the output dimension first: dim 0 of the weight for Conv2d and
Dense, dim 1 for Conv2dTranspose (weight (in, out/group, kh, kw)), the rest flattened.
"""
import numpy as np

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ms_gan.errors import UserError
from ms_gan.nn import workarounds

__all__ = ["SpectralNorm", "spectral_norm_sigmas"]


def _normalize(x, eps):
    """x / max(||x||_2, eps), like torch.nn.functional.normalize."""
    norm = ops.sqrt(ops.reduce_sum(x * x))
    return workarounds.divide(x, ops.maximum(norm, eps))


class SpectralNorm(nn.Cell):
    """A Conv2d, Conv2dTranspose or Dense whose weight is divided by its largest singular value.

    Args:
        layer: the ``nn.Conv2d``, ``nn.Conv2dTranspose`` or ``nn.Dense`` to wrap; it becomes
            ``self.layer`` and keeps its own parameters.
        n_power_iterations: power iterations per training forward (torch's default 1).
        eps: the norm floor used when normalising u and v.
        seed: None (draws from ``numpy.random``, which ``mindspore.set_seed`` seeds), an int
            or a ``numpy.random.Generator``; used for the random initial u and v.
        u_init: optional explicit initial u (rows,); it is used as given (torch's buffer).
        v_init: optional explicit initial v (cols,); it is used as given.

    Inputs/outputs are those of the wrapped layer.
    """

    def __init__(self, layer, n_power_iterations=1, eps=1e-12, seed=None, u_init=None, v_init=None):
        super().__init__()
        if isinstance(layer, nn.Conv2dTranspose):
            kind, dim = "convt", 1
        elif isinstance(layer, nn.Conv2d):
            kind, dim = "conv", 0
        elif isinstance(layer, nn.Dense):
            kind, dim = "dense", 0
        else:
            raise UserError(f"SpectralNorm wraps nn.Conv2d, nn.Conv2dTranspose or nn.Dense, "
                            f"not {type(layer).__name__}")
        if int(n_power_iterations) < 0:
            raise UserError(f"n_power_iterations must be >= 0, got {n_power_iterations}")
        if getattr(layer, "data_format", "NCHW") != "NCHW" and kind != "dense":
            # NHWC weights are (out, kh, kw, in): the flattening order would differ from torch's.
            raise UserError("SpectralNorm supports only data_format='NCHW' layers")
        self.layer = layer
        self.kind = kind
        self.dim = dim
        self.n_power_iterations = int(n_power_iterations)
        self.eps = float(eps)

        shape = tuple(layer.weight.shape)
        self.weight_shape = shape
        self.perm = (dim,) + tuple(d for d in range(len(shape)) if d != dim)
        self.rows = int(shape[dim])
        self.cols = int(np.prod(shape)) // self.rows
        dtype = layer.weight.dtype
        np_dtype = ms.dtype_to_nptype(dtype)

        rng = seed if isinstance(seed, np.random.Generator) else None
        if rng is None and seed is not None:
            rng = np.random.default_rng(seed)
        normal = rng.standard_normal if rng is not None else np.random.standard_normal
        u = self._initial_vector(u_init, self.rows, "u_init", normal)
        v = self._initial_vector(v_init, self.cols, "v_init", normal)
        self.weight_u = Parameter(Tensor(u.astype(np_dtype)), name="weight_u", requires_grad=False)
        self.weight_v = Parameter(Tensor(v.astype(np_dtype)), name="weight_v", requires_grad=False)
        w_mat = np.transpose(layer.weight.asnumpy(), self.perm).reshape(self.rows, self.cols)
        sigma = np.dot(u, w_mat.astype(np.float64) @ v)
        self.sigma = Parameter(Tensor(np.array([sigma], np_dtype)), name="sigma", requires_grad=False)

        self.matmul = ops.MatMul()
        self.matmul_tb = ops.MatMul(transpose_b=True)

    def _initial_vector(self, given, size, what, normal):
        """Torch's init: a standard normal vector normalised to unit length; or `given` as is."""
        if given is not None:
            vec = np.asarray(given.asnumpy() if isinstance(given, Tensor) else given, np.float64).reshape(-1)
            if vec.size != size:
                raise UserError(f"{what} needs {size} values for this layer, got {vec.size}")
            return vec
        vec = np.asarray(normal(size), np.float64)
        return vec / max(np.linalg.norm(vec), self.eps)

    def _weight_matrix(self, weight):
        if self.dim != 0:
            weight = ops.transpose(weight, self.perm)
        return ops.reshape(weight, (self.rows, self.cols))

    def normalized_weight(self):
        """W / sigma with the stored u, v (no power iteration, nothing written): eval-mode weight."""
        w_mat = self._weight_matrix(self.layer.weight)
        u = ops.reshape(self.weight_u, (1, self.rows))
        v = ops.reshape(self.weight_v, (1, self.cols))
        sigma = ops.reduce_sum(u * self.matmul_tb(v, w_mat))
        return workarounds.divide(self.layer.weight, sigma)

    def _train_weight(self):
        """Power iteration (no gradient), write u, v, sigma back, return W / sigma."""
        weight = self.layer.weight
        w_mat = self._weight_matrix(weight)
        w_const = ops.stop_gradient(w_mat)
        u = ops.reshape(self.weight_u, (1, self.rows))
        v = ops.reshape(self.weight_v, (1, self.cols))
        for _ in range(self.n_power_iterations):
            v = _normalize(self.matmul(u, w_const), self.eps)      # v = W^T u / |.|
            u = _normalize(self.matmul_tb(v, w_const), self.eps)   # u = W v / |.|
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(v)
        # The gradient reaches W only through sigma = u^T W v with u, v constant, as in torch.
        sigma = ops.reduce_sum(u * self.matmul_tb(v, w_mat))
        if self.n_power_iterations > 0:
            ops.assign(self.weight_u, ops.reshape(u, (self.rows,)))
            ops.assign(self.weight_v, ops.reshape(v, (self.cols,)))
        ops.assign(self.sigma, ops.reshape(ops.stop_gradient(sigma), (1,)))
        return workarounds.divide(weight, sigma)

    def construct(self, x):
        if self.training:
            weight = self._train_weight()
        else:
            weight = self.normalized_weight()
        layer = self.layer
        if self.kind == "dense":
            return self._dense(x, weight)
        if hasattr(layer, "conv_with"):   # ms_gan.nn.workarounds layers: their faster formulations too
            return layer.conv_with(x, weight)
        if self.kind == "conv":
            return workarounds.conv2d_with(layer, x, weight)
        return workarounds.conv_transpose_with(layer, x, weight)

    def _dense(self, x, weight):
        # Mirrors nn.Dense.construct with the normalised weight.
        layer = self.layer
        x_shape = ops.shape(x)
        if len(x_shape) != 2:
            x = ops.reshape(x, (-1, x_shape[-1]))
        out = self.matmul_tb(x, weight)
        if layer.has_bias:
            out = layer.bias_add(out, layer.bias)
        if layer.activation_flag:
            out = layer.activation(out)
        if len(x_shape) != 2:
            out = ops.reshape(out, x_shape[:-1] + (ops.shape(out)[-1],))
        return out

    def sigma_value(self):
        """sigma of the last training forward (before any, u^T W v of the initial u, v) as a float."""
        return float(self.sigma.asnumpy().reshape(-1)[0])

    def extend_repr(self):
        return f"n_power_iterations={self.n_power_iterations}, eps={self.eps}, dim={self.dim}"


def spectral_norm_sigmas(cell):
    """{cell path: last sigma} for every SpectralNorm inside `cell` (the root itself is named '')."""
    return {name: sn.sigma_value() for name, sn in cell.cells_and_names() if isinstance(sn, SpectralNorm)}
