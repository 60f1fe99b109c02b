"""Video encoders behind one registry.

Every entry builds a :class:`VideoEncoder`: ``forward_features(x)`` maps a clip batch
``float32 (B, C, T, H, W)`` to pooled features ``(B, feature_dim)``. ``C`` is 3 for RGB and 2
for motion vectors. Motion vectors arrive in pixels (compvid's convention); their scaling is
learnt here by a BatchNorm on the input, so data never need a hand-picked normaliser.

    >>> enc = create_encoder("tiny", 2)
    >>> enc.forward_features(torch.randn(2, 2, 8, 32, 32)).shape
    torch.Size([2, 128])
"""

from __future__ import annotations

from typing import Callable, Literal, get_args

import torch
from torch import nn
from torchvision.models import video as tv_video

from mvcgc.errors import InvalidArgumentError

InputNorm = Literal["batchnorm", "none"]

_REGISTRY: dict[str, Callable[[int], tuple[nn.Module, int]]] = {}


def register_encoder(name: str):
    """Register ``builder(in_channels) -> (backbone, feature_dim)`` under ``name``.

    The backbone maps ``(B, C, T, H, W)`` to a feature map ``(B, D, T', H', W')``;
    :class:`VideoEncoder` adds input scaling and global average pooling.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise InvalidArgumentError(f"encoder {name!r} is already registered; choose another name")
        _REGISTRY[name] = builder
        return builder

    return decorator


def list_encoders() -> list[str]:
    """Names accepted by :func:`create_encoder`, sorted."""
    return sorted(_REGISTRY)


class VideoEncoder(nn.Module):
    """Input scaling -> backbone -> global average pooling -> ``(B, feature_dim)``."""

    def __init__(
        self, backbone: nn.Module, *, arch: str, in_channels: int, feature_dim: int, input_norm: InputNorm
    ) -> None:
        super().__init__()
        self.arch = arch
        self.in_channels = in_channels
        self.feature_dim = feature_dim
        self.input_norm = input_norm
        # Motion vectors are pixels with a content-dependent range; a BatchNorm on the input
        # learns their scale (and keeps running statistics for evaluation).
        self.norm = nn.BatchNorm3d(in_channels) if input_norm == "batchnorm" else nn.Identity()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool3d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: float32 ``(B, C, T, H, W)`` -> pooled features ``(B, feature_dim)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise InvalidArgumentError(
                f"{self.arch} encoder expects (B, {self.in_channels}, T, H, W), got {tuple(x.shape)}"
            )
        x = self.norm(x)  # (B, C, T, H, W)
        x = self.backbone(x)  # (B, D, T', H', W')
        return self.pool(x).flatten(1)  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def create_encoder(name: str, in_channels: int, *, input_norm: InputNorm | None = None) -> VideoEncoder:
    """Build the registered encoder ``name`` for ``in_channels`` input channels (3 RGB, 2 MV).

    ``input_norm`` defaults to ``"batchnorm"`` for 2 channels (motion vectors in pixels) and
    ``"none"`` otherwise (RGB is normalised by the data pipeline). Weights are random; nothing
    is downloaded.
    """
    if name not in _REGISTRY:
        raise InvalidArgumentError(f"unknown encoder {name!r}; allowed: {', '.join(list_encoders())}")
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise InvalidArgumentError(f"in_channels must be a positive int (3 for RGB, 2 for MV), got {in_channels!r}")
    if input_norm is None:
        input_norm = "batchnorm" if in_channels == 2 else "none"
    if input_norm not in get_args(InputNorm):
        raise InvalidArgumentError(f"input_norm must be one of {', '.join(get_args(InputNorm))}; got {input_norm!r}")
    backbone, feature_dim = _REGISTRY[name](in_channels)
    return VideoEncoder(backbone, arch=name, in_channels=in_channels, feature_dim=feature_dim, input_norm=input_norm)


def _with_in_channels(conv: nn.Conv3d, in_channels: int) -> nn.Conv3d:
    """A fresh conv like ``conv`` but reading ``in_channels`` channels."""
    return nn.Conv3d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )


@register_encoder("s3d")
def _s3d(in_channels: int) -> tuple[nn.Module, int]:
    """torchvision S3D features (Mixed_5c, 1024 channels), 7.9 M parameters."""
    features = tv_video.s3d(weights=None).features
    stem = features[0][0]  # Conv3dNormActivation: conv, bn, relu
    stem[0] = _with_in_channels(stem[0], in_channels)
    return features, 1024


def _resnet_backbone(model: nn.Module, in_channels: int) -> nn.Module:
    model.stem[0] = _with_in_channels(model.stem[0], in_channels)
    return nn.Sequential(model.stem, model.layer1, model.layer2, model.layer3, model.layer4)


@register_encoder("r3d_18")
def _r3d_18(in_channels: int) -> tuple[nn.Module, int]:
    """torchvision R3D-18 without its pooling and classifier, 512 channels."""
    return _resnet_backbone(tv_video.r3d_18(weights=None), in_channels), 512


@register_encoder("r2plus1d_18")
def _r2plus1d_18(in_channels: int) -> tuple[nn.Module, int]:
    """torchvision R(2+1)D-18 without its pooling and classifier, 512 channels."""
    return _resnet_backbone(tv_video.r2plus1d_18(weights=None), in_channels), 512


def _conv_bn_relu(c_in: int, c_out: int, kernel, stride, padding) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    )


@register_encoder("tiny")
def _tiny(in_channels: int) -> tuple[nn.Module, int]:
    """Three-layer 3-D CNN (~0.3 M parameters), 128 channels: the fastest entry, for tests.

    Measured: with labels it stays at chance on RGB clips of motion-defined classes (it cannot
    fit its training set); on MV it learns. For RGB at CPU scale use ``motion``."""
    backbone = nn.Sequential(
        _conv_bn_relu(in_channels, 32, (3, 5, 5), (1, 2, 2), (1, 2, 2)),
        _conv_bn_relu(32, 64, 3, 2, 1),
        _conv_bn_relu(64, 128, 3, 2, 1),
    )
    return backbone, 128


class FrameCorrelation(nn.Module):
    """How well each position of frame t matches frame t + ``gap`` at every displacement within ``radius``.

    ``(B, C, T, H, W)`` features -> ``(B, (2r+1)^2, T, H, W)`` cosine similarities, channel
    ``(dy + r) * (2r + 1) + (dx + r)`` for displacement ``(dx, dy)`` (x right, y down) in feature
    cells; the last ``gap`` frames repeat the last pair's volume, so ``T`` is kept (a clip shorter
    than ``gap + 1`` frames compares its first and last frames). Parameter-free: the features it
    compares are learnt. (A correlation layer as in FlowNet and the correlation networks for
    video; here the bias that lets a small RGB network see motion.)
    """

    def __init__(self, radius: int, gap: int = 1) -> None:
        super().__init__()
        if radius < 1 or gap < 1:
            raise InvalidArgumentError(f"radius and gap must be >= 1, got {radius}, {gap}")
        self.radius = radius
        self.gap = gap

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        r, t = self.radius, f.shape[2]
        if t < 2:
            raise InvalidArgumentError(f"frame correlation needs clips of at least 2 frames (num_frames >= 2), "
                                       f"got {t}")
        gap = min(self.gap, t - 1)
        f = nn.functional.normalize(f, dim=1)  # unit feature vectors: similarity independent of contrast
        now, later = f[:, :, :-gap], f[:, :, gap:]  # frames t and t + gap, (B, C, T-gap, H, W) each
        h, w = now.shape[-2:]
        padded = nn.functional.pad(later, (r, r, r, r))  # (B, C, T-gap, H+2r, W+2r), zeros: no match off-frame
        volume = torch.stack(
            [(now * padded[..., dy : dy + h, dx : dx + w]).sum(1) for dy in range(2 * r + 1) for dx in range(2 * r + 1)],
            dim=1,
        )  # (B, (2r+1)^2, T-gap, H, W)
        return torch.cat([volume] + [volume[:, :, -1:]] * gap, dim=2)  # (B, (2r+1)^2, T, H, W)


class MultiGapCorrelation(nn.Module):
    """:class:`FrameCorrelation` at several frame gaps, stacked: ``(B, len(gaps) * (2r+1)^2, T, H, W)``.

    Gap 1 resolves fast motion; a longer gap turns slow motion (a rotating or growing object moves
    its edge a fraction of a cell per frame) into whole cells."""

    def __init__(self, radius: int, gaps: tuple[int, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(FrameCorrelation(radius, g) for g in gaps)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return torch.cat([layer(f) for layer in self.layers], dim=1)


class PerFrame(nn.Module):
    """Apply a 2-D module to every frame: ``(B, C, T, H, W)`` -> ``(B, C', T, H', W')``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.module(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, C', H', W')
        return y.view(b, t, *y.shape[1:]).transpose(1, 2)


def _conv2d_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def motion_stem(
    in_channels: int, *, width: int = 8, radius: int = 2, gaps: tuple[int, ...] = (1, 4)
) -> tuple[nn.Module, int]:
    """The input stage of the motion encoders, at half resolution: ``(B, C, T, H, W)`` -> ``(B, D, T, H/2, W/2)``.

    RGB (3 channels): per-frame features (two 3x3 convs, the second with stride 2), then
    :class:`MultiGapCorrelation` with frames ``gaps`` later: D = len(gaps) * (2 radius + 1)^2
    match scores per cell, displacements up to ``2 * radius`` input pixels per gap. Motion
    vectors (2 channels) already are motion: one strided 3x3 conv per frame, D = 32.
    """
    if in_channels == 3:
        features = PerFrame(nn.Sequential(_conv2d_bn_relu(3, width, 1), _conv2d_bn_relu(width, width, 2)))
        return nn.Sequential(features, MultiGapCorrelation(radius, gaps)), len(gaps) * (2 * radius + 1) ** 2
    return PerFrame(_conv2d_bn_relu(in_channels, 32, 2)), 32


def _motion_trunk(channels: int) -> nn.Sequential:
    """``(B, channels, T, H/2, W/2)`` -> ``(B, 128, T/2, H/8, W/8)``: the small 3-D trunk of `motion`."""
    return nn.Sequential(
        nn.BatchNorm3d(channels),  # match scores / MV features on one scale
        _conv_bn_relu(channels, 32, 1, 1, 0),
        _conv_bn_relu(32, 64, (1, 3, 3), (1, 2, 2), (0, 1, 1)),
        _conv_bn_relu(64, 128, (3, 3, 3), (2, 2, 2), 1),
    )


class MotionBackbone(nn.Module):
    """`motion_affine`: a correlation stem and 3-D trunk, beside affine pooling of an explicit flow.

    Two paths, concatenated (``(B, 128 + 24, 1, 1, 1)``):

    - trunk: :func:`motion_stem` (frame-to-frame match scores for RGB, a strided conv for MV)
      and a small 3-D trunk, globally averaged. It learns translations well.
    - affine: a flow at half resolution, pooled by :class:`~mvcgc.flow_pooling.AffineFlowPool`
      (4 heads that follow what moves; 6 invariants each). RGB: Lucas-Kanade flow between
      consecutive frames (:class:`~mvcgc.flow_pooling.LucasKanadeFlow`); MV: the field itself.
      Rotation and growth, which global averaging of a flow cancels, become linear features.
    """

    def __init__(self, in_channels: int, *, heads: int = 4) -> None:
        super().__init__()
        from mvcgc.flow_pooling import AffineFlowPool, LucasKanadeFlow

        self.stem, channels = motion_stem(in_channels)
        self.trunk = _motion_trunk(channels)
        self.flow = LucasKanadeFlow() if in_channels == 3 else None  # MV clips are their own flow
        self.pool = AffineFlowPool(channels, heads)
        self.feature_dim = 128 + self.pool.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)  # (B, D, T, H/2, W/2)
        flow = nn.functional.avg_pool3d(self.flow(x) if self.flow is not None else x, (1, 2, 2))  # (B, 2, T, H/2, W/2)
        features = torch.cat([self.trunk(stem).mean((2, 3, 4)), self.pool(flow, stem)], 1)  # (B, 152)
        return features[:, :, None, None, None]


@register_encoder("motion")
def _motion(in_channels: int) -> tuple[nn.Module, int]:
    """Motion-first CNN for CPU scale (~0.24 M parameters), 128 channels.

    RGB enters through :func:`motion_stem` (frame-to-frame correlation at half resolution, frame
    gaps 1 and 4), MV through a strided conv; both then share one small 3-D trunk (to 1/8
    resolution, T/2). The correlation is the stated architectural bias: `tiny`, a plain 3-D CNN
    of the same cost, stays at chance on RGB for motion-defined classes even with labels.
    """
    stem, channels = motion_stem(in_channels)
    return nn.Sequential(stem, _motion_trunk(channels)), 128


@register_encoder("motion_affine")
def _motion_affine(in_channels: int) -> tuple[nn.Module, int]:
    """`motion` plus a Lucas-Kanade flow pooled by affine fits over the moving regions (~0.24 M), 152 features.

    Learns the demo's rotations and zooms with labels (68 % against `motion`'s 58 %), but its
    random-init features already retrieve these motions (demo: RGB R@1 88.5 % untrained): the flow
    and the fit at initialisation are a hand-made motion descriptor, so self-supervised training has
    little to add and can only be judged against random init. See the README ("Encoders").
    """
    backbone = MotionBackbone(in_channels)
    return backbone, backbone.feature_dim
