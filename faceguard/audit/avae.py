"""A-VAE: a face generator that redraws a face from a 32 px copy of it.

Zhou, Liang and Chen, "Manifold projection for adversarial defense on face
recognition", ECCV 2020 (``../shared/papers/avae-manifold-projection.txt``). A
variational autoencoder trained with an adversarial loss instead of a pixel loss:

- the **encoder** sees the face shrunk to 32x32 (the shrinking already removes most of
  a cloak) and gives the mean and log-variance of a latent code z;
- a **mapping network** of 4 fully connected layers turns z into w;
- the **decoder** draws a 128x128 face, w injected into every convolution by AdaIN,
  with a **skip connection** from the encoder's 8x8 features (so the latent code need
  not carry the face's layout);
- a **discriminator** tells real faces from drawn ones.

Training loss = GAN + KL(q(z|x) || N(0, I)), no pixel loss (``scripts/train_avae.py``).
The paper's Appendix D with the exact layers is not in our copy; the layer sizes here
are ours, small enough to train in minutes. One choice is ours: the discriminator also
sees the 32 px input (a conditional GAN, as in Isola et al.'s image-to-image translation
the paper builds on), so the drawn face must agree with the input at 32 px while no
pixel loss ties its details to the (possibly cloaked) input.

Inference (:func:`project`): draw M latent codes, shrink each towards the mean until
KL(N(z, sigma^2 I) || N(0, I)) <= tau (per latent dimension), draw M faces and keep the
one nearest to the input in pixels.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AVAE_PATH = Path(__file__).resolve().parents[1] / "resources" / "avae.pt"
INPUT_PX = 32  # the encoder's input side (the paper's choice)
OUTPUT_PX = 128  # the decoder's output side


def shrink(faces: Tensor) -> Tensor:
    """(B, 3, H, W) faces -> (B, 3, 32, 32), antialiased (what the encoder sees)."""
    return F.interpolate(faces, size=(INPUT_PX, INPUT_PX), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class Encoder(nn.Module):
    """32x32 face -> (mean, log-variance) of z, and the 8x8 skip features.

    Shape: (B, 3, 32, 32) in [0, 1] -> ((B, z), (B, z), (B, skip, 8, 8)).
    """

    def __init__(self, width: int, z_dim: int, skip: int) -> None:
        super().__init__()
        w = width
        self.to8 = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), _act(),                 # 32
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), _act(),   # 16
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), _act(),  # 8
        )  # fmt: skip
        self.to4 = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 4, stride=2, padding=1), _act())
        self.stats = nn.Linear(4 * w * 16, 2 * z_dim)
        self.skip = nn.Conv2d(4 * w, skip, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f8 = self.to8(x * 2 - 1)
        mean, logvar = self.stats(self.to4(f8).flatten(1)).chunk(2, dim=1)
        return mean, logvar.clamp(-10, 4), self.skip(f8)


class AdaIN(nn.Module):
    """Adaptive instance normalisation: normalise each channel, then scale and shift it
    by an affine map of w (Huang and Belongie 2017; StyleGAN, Karras et al. 2019)."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = nn.Linear(w_dim, 2 * channels)
        nn.init.zeros_(self.style.weight)
        with torch.no_grad():  # start as plain instance norm: scale 1, shift 0
            self.style.bias.copy_(torch.cat([torch.ones(channels), torch.zeros(channels)]))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        scale, shift = self.style(w)[..., None, None].chunk(2, dim=1)
        return self.norm(x) * scale + shift


class StyledConv(nn.Module):
    """3x3 convolution, AdaIN(w), leaky ReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.adain = AdaIN(cout, w_dim)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return F.leaky_relu(self.adain(self.conv(x), w), 0.2)


class Generator(nn.Module):
    """Encoder, mapping network and decoder.

    Args:
        width: channels of the encoder's first layer (the decoder mirrors it).
        z_dim: latent code size (w has the same size).
        skip: channels of the 8x8 skip connection.

    Shape: (B, 3, 32, 32) in [0, 1] -> (B, 3, 128, 128) in [0, 1].
    """

    def __init__(self, width: int = 32, z_dim: int = 128, skip: int = 32) -> None:
        super().__init__()
        self.width, self.z_dim, self.skip = width, z_dim, skip
        w = width
        self.encoder = Encoder(w, z_dim, skip)
        layers: list[nn.Module] = []
        for _ in range(4):  # the mapping network f: 4 fully connected layers
            layers += [nn.Linear(z_dim, z_dim), _act()]
        self.mapping = nn.Sequential(*layers)
        self.start = nn.Linear(z_dim, 4 * w * 16)  # w -> a 4x4 map
        # channels at 4, 8, 16, 32, 64, 128 px
        chans = [4 * w, 4 * w, 4 * w, 2 * w, w, w]
        self.convs = nn.ModuleList([StyledConv(chans[0], chans[0], z_dim)])
        for k in range(1, len(chans)):
            extra = skip if k == 1 else 0  # the skip joins at 8x8
            self.convs.append(StyledConv(chans[k - 1] + extra, chans[k], z_dim))
        self.to_rgb = nn.Conv2d(chans[-1], 3, 1)

    def encode(self, x32: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(mean, log-variance, skip features) of 32 px faces."""
        return self.encoder(x32)

    def decode(self, z: Tensor, skip: Tensor) -> Tensor:
        """Faces drawn from latent codes z (B, z_dim) and skip features (B, skip, 8, 8)."""
        w = self.mapping(z)
        x = self.start(w).view(len(z), -1, 4, 4)
        x = self.convs[0](x, w)
        for k, conv in enumerate(self.convs[1:], 1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            if k == 1:
                x = torch.cat([x, skip], dim=1)
            x = conv(x, w)
        return torch.sigmoid(self.to_rgb(x))

    def forward(self, x32: Tensor, generator: torch.Generator | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: (drawn faces, mean, log-variance), z drawn by reparametrisation."""
        mean, logvar, skip = self.encode(x32)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                            dtype=mean.dtype)
        return self.decode(mean + noise * (0.5 * logvar).exp(), skip), mean, logvar


class Discriminator(nn.Module):
    """Real or drawn? Sees a 128 px face and (upsampled) the 32 px input it came from.

    Shape: ((B, 3, 128, 128), (B, 3, 32, 32)) -> (B,) logits.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        chans = [6, w, 2 * w, 4 * w, 4 * w, 4 * w]  # 128 -> 64 -> 32 -> 16 -> 8 -> 4
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), _act()]
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(4 * w * 16, 1)

    def forward(self, face: Tensor, x32: Tensor) -> Tensor:
        cond = F.interpolate(x32, size=face.shape[-2:], mode="bilinear", align_corners=False)
        h = self.features(torch.cat([face, cond], dim=1) * 2 - 1)
        return self.out(h.flatten(1))[:, 0]


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample, averaged over latent dimensions."""
    return 0.5 * (mean.square() + logvar.exp() - 1 - logvar).mean(dim=1)


def clip_codes(z: Tensor, logvar: Tensor, tau: float) -> Tensor:
    """Shrink each code towards 0 until KL(N(z, sigma^2 I) || N(0, I)) <= tau.

    The KL is averaged over latent dimensions, so ``tau`` does not depend on z's size.
    Where sigma alone already exceeds ``tau`` the code becomes 0 (the prior's mode).

    Shapes: z (M, D), logvar (D,) or (M, D) -> (M, D).
    """
    spread = 0.5 * (logvar.exp() - 1 - logvar).expand_as(z).mean(dim=1)  # the sigma part
    room = (tau - spread).clamp_min(0)  # what is left for 0.5 * mean(z^2)
    size = 0.5 * z.square().mean(dim=1)
    scale = torch.where(size > room, (room / size.clamp_min(1e-12)).sqrt(),
                        torch.ones_like(size))
    return z * scale[:, None]


@torch.no_grad()
def project(net: Generator, faces: Tensor, samples: int = 32, tau: float = 0.03,
            generator: torch.Generator | None = None) -> Tensor:
    """Project faces onto the face manifold, as the paper's inference does.

    For each face: encode its 32 px copy, draw ``samples`` latent codes clipped to
    KL <= ``tau``, draw that many 128 px faces, and keep the one nearest (mean squared
    pixel difference) to the face itself at 128 px.

    Shape: (B, 3, H, W) in [0, 1] (aligned faces) -> (B, 3, 128, 128) in [0, 1].
    """
    target = F.interpolate(faces, size=(OUTPUT_PX, OUTPUT_PX), mode="bilinear",
                           antialias=True, align_corners=False).clamp(0, 1)
    mean, logvar, skip = net.encode(shrink(faces))
    out = []
    for k in range(len(faces)):
        # drawn where the generator lives (the same draws on a CPU and a GPU)
        noise = torch.randn((samples, net.z_dim), generator=generator,
                            device=generator.device if generator is not None else mean.device
                            ).to(mean)
        z = mean[k] + noise * (0.5 * logvar[k]).exp()
        z = clip_codes(z, logvar[k], tau)
        drawn = net.decode(z, skip[k : k + 1].expand(samples, -1, -1, -1))
        nearest = (drawn - target[k]).square().flatten(1).mean(1).argmin()
        out.append(drawn[nearest])
    return torch.stack(out)


def load_avae(path: str | Path | None = None, device: str | torch.device = "cpu") -> Generator:
    """The shipped A-VAE generator (or ``path``) in float32 eval mode; cached.

    Raises:
        FileNotFoundError: the weights file is absent.
    """
    from faceguard.audit.purifier import load_network

    path = Path(path) if path is not None else AVAE_PATH

    def build(ckpt: dict) -> Generator:
        net = Generator(**ckpt["arch"])
        net.load_state_dict(_dequantised(ckpt["state_dict"]))
        return net

    return load_network(path, device, build, f"A-VAE weights {path} are missing; make them "
                                             "with scripts/train_avae.py")


def save_avae(net: Generator, path: str | Path, info: dict[str, str]) -> None:
    """Save the generator (not the discriminator) with its architecture: weight matrices
    and kernels as int8 with a float16 scale per output channel (``<name>.scale``), the
    rest in float16. Half the bytes of float16 (2 MB for the shipped model); the
    redrawn faces differ from float32's by a fraction of a grey level."""
    state = {}
    for k, v in net.state_dict().items():
        v = v.detach().to("cpu", torch.float32)
        if v.ndim >= 2:
            scale = v.flatten(1).abs().amax(1).clamp_min(1e-12) / 127
            state[k] = (v / scale.view(-1, *[1] * (v.ndim - 1))).round().to(torch.int8)
            state[k + ".scale"] = scale.to(torch.float16)
        else:
            state[k] = v.to(torch.float16)
    arch = {"width": net.width, "z_dim": net.z_dim, "skip": net.skip}
    torch.save({"arch": arch, "state_dict": state, "info": dict(info)}, Path(path))


def _dequantised(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """float32 tensors from :func:`save_avae`'s int8 weights and float16 scales."""
    out = {}
    for k, v in state.items():
        if k.endswith(".scale"):
            continue
        if v.dtype == torch.int8:
            scale = state[k + ".scale"].float()
            out[k] = v.float() * scale.view(-1, *[1] * (v.ndim - 1))
        else:
            out[k] = v.float()
    return out
