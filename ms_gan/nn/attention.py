"""The SAGAN self-attention block of SPEC section 5 (the article's ``Self_Attention``).

Parameter names (relative to the cell; same as the torch module's state-dict keys):
``query_conv.weight``, ``query_conv.bias``, ``key_conv.weight``, ``key_conv.bias``,
``value_conv.weight``, ``value_conv.bias``, ``gamma`` (shape (1,), initialised to 0).

Memory and speed: automatic differentiation of the article's formula kept about fourteen
(B, N, N) tensors through the backward pass (3.5 GB for SAGAN-64's 32x32 attention at batch
64, N = 1024) and ran its softmax over the strided axis (2.6 s forward+backward). The
function is computed here with the softmax over the contiguous axis, by
:class:`AttentionCore`, whose hand-written backward keeps no (B, N, N) tensor (it recomputes
the attention, as FlashAttention does) and works a few images at a time: 0.4-0.5 s and
~0.5 GB for the same block (``bench/NOTES.md``).
"""
import numpy as np

from mindspore import Parameter, Tensor, nn, ops

from ms_gan.errors import UserError

__all__ = ["AttentionCore", "SelfAttention", "attention_gammas"]


class AttentionCore(nn.Cell):
    """(q, k, v) -> o = v @ attention_map^T, differentiated without storing the attention map.

    The forward and the backward run a few images at a time (``chunk_elements``), so their
    (images, N, N) temporaries stay small, and the backward recomputes the attention map
    instead of keeping it (as FlashAttention does). The backward makes no broadcast of a
    (B, N, N) tensor either (MindSpore's CPU kernels materialise broadcasts: one
    (B, N, N) - (B, N, 1) costs five (B, N, N) buffers):

        A  = softmax(k^T q, axis=-1)                               recomputed
        s  = rowsum(A * dA) = sum over channels of (do * o)       (B, 1, N), no (B, N, N) product
        dA - s 1^T = [do; -s]^T [v; 1]                             one BatchMatMul
        dT = A * (dA - s 1^T)                                      softmax backward
        dq = k dT,  dk = q dT^T,  dv = do A

    Args:
        chunk_elements: images per chunk = ceil(chunk_elements / N^2) (default 2**23: one
            (images, N, N) buffer <= 32 MB); 0 = the whole batch at once (needed for a
            dynamic batch size, e.g. exported MindIR). Results do not depend on it.

    Inputs:
        q, k: (B, C', N); v: (B, C, N).

    Outputs:
        o: (B, C, N).
    """

    def __init__(self, chunk_elements=1 << 23):
        super().__init__()
        self.chunk_elements = int(chunk_elements)
        self.bmm = ops.BatchMatMul()
        self.bmm_ta = ops.BatchMatMul(transpose_a=True)
        self.bmm_tb = ops.BatchMatMul(transpose_b=True)
        self.softmax = ops.Softmax(axis=-1)

    def attention_map(self, q, k):
        """(B, N, N) with ``[b, p, i] = softmax_i(k_p . q_i)``: the article's map, made in this orientation."""
        return self.softmax(self.bmm_ta(k, q))

    def _step(self, q):
        """Images per chunk: ceil(chunk_elements / N^2) (written without max(): graph mode)."""
        n = ops.shape(q)[-1]
        return (self.chunk_elements + n * n - 1) // (n * n)

    def construct(self, q, k, v):
        if self.chunk_elements <= 0:   # a Python constant: graph mode keeps one branch
            return self.bmm_tb(v, self.attention_map(q, k))
        b = ops.shape(q)[0]
        step = self._step(q)
        if step >= b:
            return self.bmm_tb(v, self.attention_map(q, k))
        os_ = ()
        for start in range(0, b, step):
            stop = start + step if start + step < b else b
            q_c, k_c, v_c = q[start:stop], k[start:stop], v[start:stop]
            os_ = os_ + (self.bmm_tb(v_c, self.attention_map(q_c, k_c)),)
        return ops.concat(os_, 0)

    def _grads(self, q, k, v, o, d_o):
        attention_map = self.attention_map(q, k)
        d_v = self.bmm(d_o, attention_map)
        row_sum = ops.sum(d_o * o, 1, keepdim=True)
        d_a = self.bmm_ta(ops.concat((d_o, -row_sum), 1), ops.concat((v, ops.ones_like(row_sum)), 1))
        d_t = attention_map * d_a
        return self.bmm(k, d_t), self.bmm_tb(q, d_t), d_v

    def bprop(self, q, k, v, out, dout):
        if self.chunk_elements <= 0:
            return self._grads(q, k, v, out, dout)
        b = ops.shape(q)[0]
        step = self._step(q)
        if step >= b:
            return self._grads(q, k, v, out, dout)
        d_qs = ()
        d_ks = ()
        d_vs = ()
        for start in range(0, b, step):
            stop = start + step if start + step < b else b
            d_q, d_k, d_v = self._grads(q[start:stop], k[start:stop], v[start:stop], out[start:stop],
                                        dout[start:stop])
            d_qs = d_qs + (d_q,)
            d_ks = d_ks + (d_k,)
            d_vs = d_vs + (d_v,)
        return ops.concat(d_qs, 0), ops.concat(d_ks, 0), ops.concat(d_vs, 0)


class SelfAttention(nn.Cell):
    """out = x + gamma * o, o mixing the values of all positions with a softmax attention map.

    With q = query_conv(x), k = key_conv(x) viewed as (B, C/8, N) and v = value_conv(x) as
    (B, C, N), N = H*W: S = q^T k (B, N, N); attention_map_T = softmax(S, axis=-2);
    attention_map = attention_map_T transposed on its last two axes; o = v @ attention_map^T.

    So ``attention_map[b, p, :]`` holds the weights with which output position p mixes the
    values of all N positions: they sum to 1 over the last axis (p, i are flattened
    row-major (h, w) indices).

    ``out`` goes through :class:`AttentionCore` (memory-lean backward); the map is computed
    beside it by plain ops, so in graph mode an unused map (training) is never computed.

    Args:
        in_dim: channels C of the input (at least 8: query and key have C // 8 channels).
        chunk_elements: images go through the attention core in groups whose (images, N, N)
            buffers hold at most this many elements (default 2**23, 32 MB), bounding the
            temporaries of forward and backward; the result does not depend on it.

    Inputs:
        x: (B, C, H, W) float tensor.

    Outputs:
        (out, attention_map): out (B, C, H, W) and attention_map (B, N, N).
    """

    def __init__(self, in_dim, chunk_elements=1 << 23):
        super().__init__()
        in_dim = int(in_dim)
        if in_dim < 8:
            raise UserError(f"SelfAttention needs at least 8 input channels (query/key use C // 8), got {in_dim}")
        self.in_dim = in_dim
        # 1x1 convs with bias; MindSpore's default init equals torch's (HeUniform(sqrt(5)), U(+-1/sqrt(fan_in))).
        self.query_conv = nn.Conv2d(in_dim, in_dim // 8, 1, has_bias=True, pad_mode="valid")
        self.key_conv = nn.Conv2d(in_dim, in_dim // 8, 1, has_bias=True, pad_mode="valid")
        self.value_conv = nn.Conv2d(in_dim, in_dim, 1, has_bias=True, pad_mode="valid")
        self.gamma = Parameter(Tensor(np.zeros((1,), np.float32)), name="gamma")
        self.core = AttentionCore(chunk_elements)

    def construct(self, x):
        b, c, h, w = ops.shape(x)
        n = h * w
        proj_query = ops.reshape(self.query_conv(x), (b, -1, n))   # (B, C', N)
        proj_key = ops.reshape(self.key_conv(x), (b, -1, n))       # (B, C', N)
        proj_value = ops.reshape(self.value_conv(x), (b, -1, n))   # (B, C, N)
        o = self.core(proj_query, proj_key, proj_value)
        out = x + self.gamma * ops.reshape(o, (b, c, h, w))
        # The map is computed apart from the core, by plain differentiable ops: graph mode prunes
        # it when nothing uses it (training), and a loss that does use it gets its exact gradient.
        attention_map = self.core.attention_map(proj_query, proj_key)
        return out, attention_map


def attention_gammas(cell):
    """{gamma parameter name: value} for every SelfAttention inside ``cell`` (for logging)."""
    return {sub.gamma.name: float(sub.gamma.asnumpy().reshape(-1)[0])
            for _, sub in cell.cells_and_names() if isinstance(sub, SelfAttention)}
