"""Seed 000's PyTorch DCGAN on the 8x8 digits, as the article runs it, for `bench/main_job.py`.

The article's script with three changes that do not alter its work: CPU instead of `.cuda()`,
the digits read from the copy ms_gan ships (the same 1,797 images scikit-learn's `load_digits`
returns; scikit-learn is not a dependency), and figures saved to `--out` instead of `plt.show()`.
Everything else is the article's: batch 16, Adam defaults, BCE on probabilities, the step order
(D on fakes, D on reals, G on 2x batch), loss/accuracy bookkeeping with `.item()` per update, a
16x16 sample grid every 20 epochs, and the two curves at the end.

    python bench/seed000_torch.py --epochs 200 --out DIR [--threads N]
"""
import argparse
import os
import time

T0 = time.perf_counter()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import optim  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
img_size, n_noise, epochs_default, interval, batch_size = 8, 64, 200, 20, 16


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.convt_1 = nn.ConvTranspose2d(n_noise, 64, 3)
        self.convt_2 = nn.ConvTranspose2d(64, 32, 3)
        self.convt_3 = nn.ConvTranspose2d(32, 1, 4)

    def forward(self, x):
        x = x.view(-1, n_noise, 1, 1)
        x = F.relu(self.convt_1(x))
        x = F.relu(self.convt_2(x))
        return torch.tanh(self.convt_3(x))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_1 = nn.Conv2d(1, 16, 4)
        self.conv_2 = nn.Conv2d(16, 32, 3)
        self.conv_3 = nn.Conv2d(32, 1, 3)

    def forward(self, x):
        x = x.view(-1, 1, img_size, img_size)
        x = F.leaky_relu(self.conv_1(x), negative_slope=0.2)
        x = F.leaky_relu(self.conv_2(x), negative_slope=0.2)
        return torch.sigmoid(self.conv_3(x)).view(-1, 1)


def count_correct(y, t):
    return torch.sum((torch.where(y < 0.5, 0, 1) == t).float()).item()


def generate_images(generator, i, out):
    n_rows = n_cols = 16
    noise = torch.randn(n_rows * n_cols, n_noise)
    g_imgs = (generator(noise) / 2 + 0.5).detach().numpy()
    spaced = img_size + 2
    matrix_image = np.zeros((spaced * n_rows, spaced * n_cols))
    for r in range(n_rows):
        for c in range(n_cols):
            matrix_image[r * spaced: r * spaced + img_size, c * spaced: c * spaced + img_size] = \
                g_imgs[r * n_cols + c].reshape(img_size, img_size)
    plt.figure(figsize=(8, 8))
    plt.imshow(matrix_image.tolist(), cmap="Greys_r", vmin=0.0, vmax=1.0)
    plt.tick_params(labelbottom=False, labelleft=False, bottom=False, left=False)
    plt.savefig(os.path.join(out, f"grid_{i:04d}.png"))
    plt.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=epochs_default)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    digits = np.load(os.path.join(ROOT, "ms_gan", "data", "digits8x8.npz"))["images"].reshape(-1, 64)
    x_train = torch.tensor(np.asarray(digits, dtype=np.float64) / 16 * 2 - 1, dtype=torch.float)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train), batch_size=batch_size,
                                               shuffle=True)
    generator, discriminator = Generator(), Discriminator()
    loss_func = nn.BCELoss()
    optimizer_gen = optim.Adam(generator.parameters())
    optimizer_disc = optim.Adam(discriminator.parameters())
    records = {"error_fake": [], "acc_fake": [], "error_real": [], "acc_real": []}
    generator.train()
    discriminator.train()
    t_loop = time.perf_counter()
    for i in range(args.epochs):
        loss_fake = correct_fake = loss_real = correct_real = n_total = 0
        for j, (x,) in enumerate(train_loader):
            n_total += x.size()[0]
            noise = torch.randn(x.size()[0], n_noise)
            imgs_fake = generator(noise)
            t = torch.zeros(x.size()[0], 1)
            y = discriminator(imgs_fake)
            loss = loss_func(y, t)
            optimizer_disc.zero_grad()
            loss.backward()
            optimizer_disc.step()
            loss_fake += loss.item()
            correct_fake += count_correct(y, t)
            t = torch.ones(x.size()[0], 1)
            y = discriminator(x)
            loss = loss_func(y, t)
            optimizer_disc.zero_grad()
            loss.backward()
            optimizer_disc.step()
            loss_real += loss.item()
            correct_real += count_correct(y, t)
            noise = torch.randn(x.size()[0] * 2, n_noise)
            imgs_fake = generator(noise)
            t = torch.ones(x.size()[0] * 2, 1)
            y = discriminator(imgs_fake)
            loss = loss_func(y, t)
            optimizer_gen.zero_grad()
            loss.backward()
            optimizer_gen.step()
        records["error_fake"].append(loss_fake / (j + 1))
        records["acc_fake"].append(correct_fake / n_total)
        records["error_real"].append(loss_real / (j + 1))
        records["acc_real"].append(correct_real / n_total)
        if i % interval == 0:
            print("Epochs:", i, "Error_fake:", records["error_fake"][-1], "Error_real:", records["error_real"][-1])
            generate_images(generator, i, args.out)
    loop = time.perf_counter() - t_loop
    for kind in ("error", "acc"):
        for src in ("fake", "real"):
            plt.plot(range(len(records[f"{kind}_{src}"])), records[f"{kind}_{src}"], label=f"{kind}_{src}")
        plt.legend()
        plt.savefig(os.path.join(args.out, f"{kind}.png"))
        plt.close()
    print(f"loop_seconds {loop:.2f} total_seconds {time.perf_counter() - T0:.2f}")


if __name__ == "__main__":
    main()
