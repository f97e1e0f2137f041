"""SelfAttention against the SPEC formula in NumPy and the article's torch code."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor

from ms_gan.errors import UserError
from ms_gan.nn.attention import SelfAttention


def make(in_dim=16, gamma=0.7, seed=0):
    """A SelfAttention with seeded random weights and the given gamma."""
    rng = np.random.default_rng(seed)
    cell = SelfAttention(in_dim)
    for param in cell.trainable_params():
        param.set_data(Tensor((0.3 * rng.standard_normal(param.shape)).astype(np.float32)))
    cell.gamma.set_data(Tensor(np.array([gamma], np.float32)))
    return cell, rng


def numpy_attention(cell, x):
    """SPEC section 5 in float64 NumPy: returns (out, attention_map)."""
    p = {name: cell.parameters_dict()[name].asnumpy().astype(np.float64) for name in cell.parameters_dict()}
    x = np.asarray(x, np.float64)
    b, c, h, w = x.shape
    flat = x.reshape(b, c, h * w)

    def conv1x1(prefix):
        return np.einsum("oc,bcn->bon", p[prefix + ".weight"][:, :, 0, 0], flat) + p[prefix + ".bias"][None, :, None]

    q, k, v = conv1x1("query_conv"), conv1x1("key_conv"), conv1x1("value_conv")
    s = np.einsum("bci,bcj->bij", q, k)                        # S = q^T k, (B, N, N)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    attention_map_t = e / e.sum(axis=1, keepdims=True)         # softmax over dim -2
    attention_map = attention_map_t.transpose(0, 2, 1)
    o = v @ attention_map.transpose(0, 2, 1)                   # v . attention^T
    out = x + p["gamma"][0] * o.reshape(b, c, h, w)
    return out, attention_map


def test_parameters_and_initial_gamma():
    cell = SelfAttention(64)
    names = [p.name for p in cell.get_parameters()]
    assert sorted(names) == sorted(["gamma", "query_conv.weight", "query_conv.bias", "key_conv.weight",
                                    "key_conv.bias", "value_conv.weight", "value_conv.bias"])
    assert {p.name for p in cell.trainable_params()} == set(names)
    assert cell.gamma.shape == (1,) and cell.gamma.asnumpy()[0] == 0
    assert cell.query_conv.weight.shape == (8, 64, 1, 1)
    assert cell.key_conv.weight.shape == (8, 64, 1, 1)
    assert cell.value_conv.weight.shape == (64, 64, 1, 1)
    # torch's default init: kaiming-uniform(a=sqrt(5)) -> bound 1/sqrt(fan_in); bias U(+-1/sqrt(fan_in)).
    # Checked per parameter for the bound and on the pooled values for the spread: an 8-value bias alone
    # falls below any fixed fraction of the bound with non-zero probability (it did once in CI).
    bound = 1 / np.sqrt(64)
    pooled = []
    for p in cell.trainable_params():
        if p.name != "gamma":
            values = p.asnumpy()
            assert np.abs(values).max() <= bound + 1e-7
            assert values.std() > 0, p.name
            pooled.append(values.ravel())
    assert np.abs(np.concatenate(pooled)).max() > 0.95 * bound
    with pytest.raises(UserError):
        SelfAttention(4)


def test_gamma_zero_is_identity_and_map_rows_sum_to_one():
    cell, rng = make(gamma=0.0)
    x = rng.standard_normal((2, 16, 5, 3)).astype(np.float32)
    out, attention_map = cell(Tensor(x))
    np.testing.assert_array_equal(out.asnumpy(), x)
    attention_map = attention_map.asnumpy()
    assert attention_map.shape == (2, 15, 15)
    assert attention_map.min() >= 0
    # attention_map[b, p, :] are the weights output position p gives to every position:
    # they sum to 1 over the LAST axis (the softmax ran over dim -2, then the map was transposed).
    np.testing.assert_allclose(attention_map.sum(axis=-1), 1.0, atol=1e-5)
    assert not np.allclose(attention_map.sum(axis=-2), 1.0, atol=1e-3)


def test_forward_matches_numpy_formula():
    cell, rng = make(gamma=0.7)
    x = rng.standard_normal((2, 16, 4, 6)).astype(np.float32)
    out, attention_map = cell(Tensor(x))
    ref_out, ref_map = numpy_attention(cell, x)
    np.testing.assert_allclose(attention_map.asnumpy(), ref_map, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.asnumpy(), ref_out, rtol=1e-5, atol=1e-5)
    assert not np.allclose(out.asnumpy(), x, atol=1e-2)  # gamma != 0 really changes x


def test_forward_matches_article_torch_code():
    torch = pytest.importorskip("torch")
    from torch import nn as tnn

    class Self_Attention(tnn.Module):  # noqa: N801  (the article's code, comments removed)
        def __init__(self, in_dim):
            super().__init__()
            self.query_conv = tnn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
            self.key_conv = tnn.Conv2d(in_channels=in_dim, out_channels=in_dim // 8, kernel_size=1)
            self.value_conv = tnn.Conv2d(in_channels=in_dim, out_channels=in_dim, kernel_size=1)
            self.softmax = tnn.Softmax(dim=-2)
            self.gamma = tnn.Parameter(torch.zeros(1))

        def forward(self, x):
            X = x  # noqa: N806
            proj_query = self.query_conv(X).view(X.shape[0], -1, X.shape[2] * X.shape[3])
            proj_query = proj_query.permute(0, 2, 1)
            proj_key = self.key_conv(X).view(X.shape[0], -1, X.shape[2] * X.shape[3])
            S = torch.bmm(proj_query, proj_key)  # noqa: N806
            attention_map_T = self.softmax(S)  # noqa: N806
            attention_map = attention_map_T.permute(0, 2, 1)
            proj_value = self.value_conv(X).view(X.shape[0], -1, X.shape[2] * X.shape[3])
            o = torch.bmm(proj_value, attention_map.permute(0, 2, 1))
            o = o.view(X.shape[0], X.shape[1], X.shape[2], X.shape[3])
            out = x + self.gamma * o
            return out, attention_map

    cell, rng = make(in_dim=32, gamma=-1.3, seed=4)
    ref = Self_Attention(32)
    ref.load_state_dict({name: torch.from_numpy(p.asnumpy().copy()) for name, p in cell.parameters_dict().items()})
    x = rng.standard_normal((2, 32, 4, 4)).astype(np.float32)
    out, attention_map = cell(Tensor(x))
    with torch.no_grad():
        t_out, t_map = ref(torch.from_numpy(x))
    np.testing.assert_allclose(out.asnumpy(), t_out.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(attention_map.asnumpy(), t_map.numpy(), rtol=1e-5, atol=1e-6)


def test_graph_mode_matches_pynative_with_gradients():
    cell, rng = make(gamma=0.5, seed=2)
    x = Tensor(rng.standard_normal((2, 16, 4, 4)).astype(np.float32))

    def loss_fn(x):
        out, attention_map = cell(x)
        return (out ** 2).mean() + attention_map.max()

    grad_fn = ms.value_and_grad(loss_fn, None, cell.trainable_params())

    def step(x):
        return grad_fn(x)

    loss_py, grads_py = step(x)
    loss_g, grads_g = ms.jit(step)(x)
    np.testing.assert_allclose(loss_g.asnumpy(), loss_py.asnumpy(), rtol=1e-5)
    for g_py, g_g, p in zip(grads_py, grads_g, cell.trainable_params()):
        np.testing.assert_allclose(g_g.asnumpy(), g_py.asnumpy(), rtol=1e-4, atol=1e-6, err_msg=p.name)
        assert np.abs(g_py.asnumpy()).max() > 0, p.name

    def forward(x):
        return cell(x)

    out_g, map_g = ms.jit(forward)(x)
    out_py, map_py = cell(x)
    np.testing.assert_allclose(out_g.asnumpy(), out_py.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(map_g.asnumpy(), map_py.asnumpy(), rtol=1e-5, atol=1e-7)


def _article_torch_attention(torch, cell):
    """The article's torch module (as above) with the cell's weights, written compactly."""
    params = {name: torch.tensor(p.asnumpy().astype(np.float64), requires_grad=True)
              for name, p in cell.parameters_dict().items()}

    def forward(x):
        b, c, h, w = x.shape

        def conv1x1(prefix):
            weight = params[prefix + ".weight"][:, :, 0, 0]
            return torch.einsum("oc,bchw->bohw", weight, x) + params[prefix + ".bias"][None, :, None, None]

        q = conv1x1("query_conv").view(b, -1, h * w).permute(0, 2, 1)
        k = conv1x1("key_conv").view(b, -1, h * w)
        attention_map_t = torch.softmax(torch.bmm(q, k), dim=-2)
        attention_map = attention_map_t.permute(0, 2, 1)
        v = conv1x1("value_conv").view(b, -1, h * w)
        o = torch.bmm(v, attention_map.permute(0, 2, 1)).view(b, c, h, w)
        return x + params["gamma"] * o, attention_map

    return params, forward


@pytest.mark.parametrize("chunk_elements", [1 << 23, 16 * 16, 2 * 16 * 16])
@pytest.mark.parametrize("use_map", [False, True])
def test_gradients_match_torch_autograd(chunk_elements, use_map):
    """AttentionCore's hand-written backward (whole batch, 1 image and 2 images per chunk with a
    remainder) against torch autograd of the article's code in float64, in PyNative and graph mode."""
    torch = pytest.importorskip("torch")
    cell, rng = make(in_dim=16, gamma=0.8, seed=5)
    cell.core.chunk_elements = chunk_elements
    x = rng.standard_normal((3, 16, 4, 4)).astype(np.float32)
    weights = rng.standard_normal((3, 16, 4, 4)).astype(np.float32)
    map_weights = rng.standard_normal((3, 16, 16)).astype(np.float32)

    def loss_fn(x):
        out, attention_map = cell(x)
        loss = (out * Tensor(weights)).sum()
        if use_map:
            loss = loss + (attention_map * Tensor(map_weights)).sum() * 10.0
        return loss

    grad_fn = ms.value_and_grad(loss_fn, 0, cell.trainable_params())
    params, forward = _article_torch_attention(torch, cell)
    x_t = torch.tensor(x.astype(np.float64), requires_grad=True)
    out_t, map_t = forward(x_t)
    loss_t = (out_t * torch.from_numpy(weights.astype(np.float64))).sum()
    if use_map:
        loss_t = loss_t + (map_t * torch.from_numpy(map_weights.astype(np.float64))).sum() * 10.0
    loss_t.backward()
    for run in (grad_fn, ms.jit(grad_fn)):
        loss, (dx, d_params) = run(Tensor(x))
        np.testing.assert_allclose(loss.asnumpy(), loss_t.item(), rtol=1e-5)
        np.testing.assert_allclose(dx.asnumpy(), x_t.grad.numpy(), rtol=1e-4, atol=1e-5)
        for p, g in zip(cell.trainable_params(), d_params):
            np.testing.assert_allclose(g.asnumpy(), params[p.name].grad.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=p.name)


def test_chunking_does_not_change_the_forward():
    cell, rng = make(in_dim=16, gamma=0.6, seed=6)
    x = Tensor(rng.standard_normal((5, 16, 3, 4)).astype(np.float32))
    whole, whole_map = cell(x)
    cell.core.chunk_elements = 2 * 12 * 12   # 2 images per chunk: 2 + 2 + 1
    chunked, chunked_map = cell(x)
    np.testing.assert_allclose(chunked.asnumpy(), whole.asnumpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(chunked_map.asnumpy(), whole_map.asnumpy())
