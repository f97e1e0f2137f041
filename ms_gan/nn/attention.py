"""The SAGAN self-attention block of SPEC section 5 (the article's ``Self_Attention``).

Parameter names (relative to the cell; same as the torch module's state-dict keys):
``query_conv.weight``, ``query_conv.bias``, ``key_conv.weight``, ``key_conv.bias``,
``value_conv.weight``, ``value_conv.bias``, ``gamma`` (shape (1,), initialised to 0).
"""
import numpy as np

from mindspore import Parameter, Tensor, nn, ops

from ms_gan.errors import UserError

__all__ = ["SelfAttention"]


class SelfAttention(nn.Cell):
    """out = x + gamma * o, o mixing the values of all positions with a softmax attention map.

    With q = query_conv(x), k = key_conv(x) viewed as (B, C/8, N) and v = value_conv(x) as
    (B, C, N), N = H*W: S = q^T k (B, N, N); attention_map_T = softmax(S, axis=-2);
    attention_map = attention_map_T transposed on its last two axes; o = v @ attention_map^T.

    So ``attention_map[b, p, :]`` holds the weights with which output position p mixes the
    values of all N positions: they sum to 1 over the last axis (p, i are flattened
    row-major (h, w) indices).

    Args:
        in_dim: channels C of the input (at least 8: query and key have C // 8 channels).

    Inputs:
        x: (B, C, H, W) float tensor.

    Outputs:
        (out, attention_map): out (B, C, H, W) and attention_map (B, N, N).
    """

    def __init__(self, in_dim):
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
        # q^T k without materialising the transpose of q.
        self.bmm_ta = ops.BatchMatMul(transpose_a=True)
        self.bmm = ops.BatchMatMul()

    def construct(self, x):
        b, c, h, w = ops.shape(x)
        n = h * w
        proj_query = ops.reshape(self.query_conv(x), (b, -1, n))   # (B, C', N)
        proj_key = ops.reshape(self.key_conv(x), (b, -1, n))       # (B, C', N)
        s = self.bmm_ta(proj_query, proj_key)                      # (B, N, N) = q^T k
        attention_map_t = ops.softmax(s, axis=-2)
        attention_map = ops.transpose(attention_map_t, (0, 2, 1))
        proj_value = ops.reshape(self.value_conv(x), (b, -1, n))   # (B, C, N)
        # v @ attention_map^T == v @ attention_map_t exactly (a double transpose), so skip it.
        o = self.bmm(proj_value, attention_map_t)
        o = ops.reshape(o, (b, c, h, w))
        out = x + self.gamma * o
        return out, attention_map
