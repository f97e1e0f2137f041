"""Pictures for people: sample grids, curves, interpolation strips, attention maps.

Images come in as float arrays (N, C, H, W) in [-1, 1] (the generators' tanh range).
Grids are assembled with NumPy and written with Pillow; plots use Matplotlib's Agg
canvas directly (no display needed, and no pyplot global state, so the trainer's
output worker thread can draw while the main thread trains).
"""
import numpy as np

from ms_gan.checkpoint import atomic_output


def to_uint8(images):
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return x.transpose(0, 2, 3, 1)


def grid(images, rows, cols, gap=2, background=0):
    """Tile images row by row with ``gap`` pixels between them; returns (H, W, C) uint8."""
    pics = to_uint8(images)
    n, h, w, c = pics.shape
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), background, np.uint8)
    for i in range(min(n, rows * cols)):
        r, col = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, col * (w + gap): col * (w + gap) + w] = pics[i]
    return out


def save_image(array, path, min_size=0):
    """Write an (H, W, C) uint8 array as PNG/JPG; upscale small pictures by an integer factor."""
    from PIL import Image

    pic = array[..., 0] if array.shape[-1] == 1 else array
    im = Image.fromarray(pic)
    if min_size and max(im.size) < min_size:
        factor = -(-min_size // max(im.size))
        im = im.resize((im.size[0] * factor, im.size[1] * factor), Image.NEAREST)
    with atomic_output(path) as tmp:
        im.save(tmp)
    return path


def save_grid(images, path, rows, cols, gap=2):
    """A sample grid PNG, scaled up so 8x8 digits stay visible."""
    return save_image(grid(images, rows, cols, gap), path, min_size=256)


def plot_curves(records, path, keys, title, ylabel):
    """Line plot of per-epoch ``keys`` from stats records."""
    epochs = [r["epoch"] for r in records]
    fig = _figure((6, 4))
    ax = fig.subplots()
    for key in keys:
        values = [r.get(key) for r in records]
        if any(v is not None for v in values):
            ax.plot(epochs, [np.nan if v is None else v for v in values], marker="." if len(epochs) < 30 else None,
                    label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:   # no epoch finished yet (Ctrl-C in epoch 1): no legend, no warning
        ax.legend()
    ax.grid(alpha=0.3)
    return _save_figure(fig, path)


def _figure(size):
    """A Matplotlib Figure on an Agg canvas, outside pyplot (pyplot's figure list is not thread-safe)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path):
    """Write a Matplotlib figure atomically (pyplot never saw it, so nothing to close)."""
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp)
    return path


def attention_figure(images, attention_map, query, map_size, path, n=4):
    """Generated images above the attention map of one query pixel.

    Args:
        images: (N, C, H, W) in [-1, 1].
        attention_map: (N, M, M) with M = map_size**2; row ``q`` is where query pixel q looks
            (weights over all M key positions summing to 1).
        query: (row, col) of the query pixel in the map_size x map_size grid.
        map_size: side of the feature map the attention works on.
    """
    n = min(n, len(images))
    pics = to_uint8(images[:n])
    q = query[0] * map_size + query[1]
    fig = _figure((2.2 * n, 4.6))
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        ax = axes[0][i]
        ax.imshow(pics[i][..., 0] if pics.shape[-1] == 1 else pics[i], cmap="gray")
        h, w = pics.shape[1:3]
        ax.plot([(query[1] + 0.5) * w / map_size], [(query[0] + 0.5) * h / map_size], "r+", markersize=10)
        ax.set_axis_off()
        ax = axes[1][i]
        ax.imshow(np.asarray(attention_map[i][q]).reshape(map_size, map_size), cmap="viridis")
        ax.set_axis_off()
    axes[0][0].set_title("generated (+ = query)", fontsize=8, loc="left")
    axes[1][0].set_title(f"attention of pixel {tuple(query)}", fontsize=8, loc="left")
    return _save_figure(fig, path)
