"""3D rotary position embedding shared by video and audio tokens.

Each head's D dims form D/2 adjacent (real, imag) pairs, split across three axes as in
Wan2.1: time gets D - 4*(D//6) real dims, height and width 2*(D//6) each (44/42/42 for
D=128). A token at position (t, h, w) rotates pair i of axis a by angle p_a * theta^(-2i/d_a).

Positions:
- video token of patch grid cell (f, y, x): (f, y, x), integers, exactly Wan2.1's.
- audio token j along time and i along frequency ("aligned", JoVA's temporally aligned
  RoPE): t = seconds(j) * fps / temporal_stride, h = 0, w = i, where
  seconds(j) = j * patch_t / audio_latent_rate is when the token's window starts.
  Video latent frame k is pixel frame k * temporal_stride, i.e. k * stride / fps seconds,
  so an audio token and a video latent frame at the same moment share t exactly; t is
  fractional in between, which RoPE handles like any other angle.
- text tokens (joint text attention): position (0, 0, 0), i.e. no rotation, as in Flux.
"""

from __future__ import annotations

import torch


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Real dims given to the (t, h, w) axes."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float) -> torch.Tensor:
    """positions [S, 3] (t, h, w) -> rotation angles [S, head_dim // 2], float64."""
    parts = []
    for axis, dims in enumerate(axis_dims(head_dim)):
        inv_freq = theta ** (-torch.arange(0, dims, 2, dtype=torch.float64, device=positions.device) / dims)
        parts.append(positions[:, axis, None].double() * inv_freq)
    return torch.cat(parts, dim=1)


def video_positions(grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """Patch grid (F, H, W) -> [F*H*W, 3] positions in (f, y, x) raster order."""
    f, h, w = (torch.arange(n, device=device) for n in grid)
    return torch.stack(torch.meshgrid(f, h, w, indexing="ij"), dim=-1).reshape(-1, 3)


def audio_positions_aligned(
    grid: tuple[int, int], patch_t: int, audio_latent_rate: float, fps: float, temporal_stride: int, device=None
) -> torch.Tensor:
    """Audio patch grid (F, T) -> [F*T, 3] positions, token order (frequency, time) raster."""
    n_freq, n_time = grid
    seconds = torch.arange(n_time, dtype=torch.float64, device=device) * patch_t / audio_latent_rate
    t = seconds * fps / temporal_stride
    pos = torch.zeros(n_freq, n_time, 3, dtype=torch.float64, device=device)
    pos[..., 0] = t[None, :]
    pos[..., 2] = torch.arange(n_freq, dtype=torch.float64, device=device)[:, None]
    return pos.reshape(-1, 3)


def audio_positions_javisdit(grid: tuple[int, int], video_grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """JavisDiT++'s TA-RoPE ("interleave_offset") for an audio patch grid (F, T) beside a
    video patch grid (Fv, Hv, Wv); [F*T, 3] positions, token order (frequency, time) raster.

    For the audio token at time step j and frequency index i:
      t = ceil(linspace(0, Fv - 1, T))[j]   the video latent frame it falls in;
      h = Hv + j                            rows past the video grid, one per time step;
      w = Wv + i                            columns past the video grid, one per bin.
    So audio and video share the temporal angle but never a spatial one, and audio
    tokens at different times stay distinct even when they share t. JavisDiT++ orders
    its audio tokens time-major; attention is order-free, so only these positions matter.
    """
    n_freq, n_time = grid
    fv, hv, wv = video_grid
    steps = torch.arange(n_time, dtype=torch.float64, device=device)
    t = torch.ceil(torch.linspace(0, max(fv - 1, 0), n_time, dtype=torch.float64, device=device))
    pos = torch.empty(n_freq, n_time, 3, dtype=torch.float64, device=device)
    pos[..., 0] = t[None, :]
    pos[..., 1] = hv + steps[None, :]
    pos[..., 2] = wv + torch.arange(n_freq, dtype=torch.float64, device=device)[:, None]
    return pos.reshape(-1, 3)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs of x [B, S, H, D] by the angles that `cos_sin` made cos/sin [S, D] of.

    Pair (re, im) becomes (re*cos - im*sin, im*cos + re*sin) = x * cos + pair_swapped(x) * sin
    with sin carrying the minus sign: contiguous full-width ops, two of them in place (fewer
    fresh buffers), and the same float results as the textbook form (negation and the order
    of a sum of two products do not change IEEE rounding).
    """
    x32 = x.float()
    real, imag = x32.unflatten(-1, (-1, 2)).unbind(-1)
    swapped = torch.stack((imag, real), dim=-1).flatten(-2)  # (im, re) in each pair; faster than flip
    return (x32 * cos[:, None]).add_(swapped.mul_(sin[:, None])).type_as(x)


def cos_sin(angles: torch.Tensor, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """angles [S, D/2] -> apply_rope's tables cos [S, D] = (cos, cos), sin [S, D] = (-sin, sin) per pair."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    return (
        torch.stack((cos, cos), dim=-1).flatten(-2).to(dtype),
        torch.stack((-sin, sin), dim=-1).flatten(-2).to(dtype),
    )


def identity_angles(length: int, head_dim: int, device=None) -> torch.Tensor:
    """Angles that leave `length` tokens unrotated (text tokens in joint attention)."""
    return torch.zeros(length, head_dim // 2, dtype=torch.float64, device=device)



# -- daVinci-MagiHuman's variant -------------------------------------------------------------
# Per axis, n = head_dim / 8 bands 10000^(-k/n), the same for t, h and w; the 3n angles of a
# token are ordered (t bands, h bands, w bands) and rotate the dim pairs (i, i + 3n) of the
# first 6n head dims ("rotate half"); the last head_dim / 4 dims are never rotated.
# A position is (coordinate - centre) * scale per axis, where an axis of `size` tokens read
# against a reference size `ref` has scale (ref - 1) / (size - 1) (1 when ref = size = 1)
# and h, w (not t) are centred on (size - 1) / 2.


def magihuman_bands(head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """The n = head_dim // 8 frequencies shared by the three axes, [n] float32."""
    n = head_dim // 8
    return 1.0 / theta ** (torch.arange(n, dtype=torch.float32) / n)


def magihuman_positions(coords: torch.Tensor, size: tuple[int, int, int], ref: tuple[int, int, int]) -> torch.Tensor:
    """coords [S, 3] (t, h, w) of a grid `size` read at reference size `ref` -> positions [S, 3], float64."""
    size_t = torch.tensor(size, dtype=torch.float64, device=coords.device)
    ref_t = torch.tensor(ref, dtype=torch.float64, device=coords.device)
    unit = (size_t == 1) & (ref_t == 1)
    scale = torch.where(unit, torch.ones_like(size_t), (ref_t - 1) / (size_t - 1).clamp(min=1))
    centre = (size_t - 1) / 2
    centre[0] = 0
    return (coords.double() - centre) * scale


def magihuman_video_positions(grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """Patch grid (F, H, W) -> [F*H*W, 3] positions (f, y - (H-1)/2, x - (W-1)/2), raster order."""
    return magihuman_positions(video_positions(grid, device=device), grid, grid)


def magihuman_audio_positions(length: int, device=None) -> torch.Tensor:
    """T audio tokens -> [T, 3] positions: t_j = j * ((T - 1) // 4) / (T - 1), i.e. exactly
    j / 4 (four audio tokens per video latent frame) when T = 4 (F - 1) + 1; h = w = 0.
    Depends on the length only."""
    coords = torch.zeros(length, 3, dtype=torch.float64, device=device)
    coords[:, 0] = torch.arange(length, dtype=torch.float64, device=device)
    return magihuman_positions(coords, (length, 1, 1), ((length - 1) // 4 + 1, 1, 1))


def magihuman_text_positions(length: int, device=None) -> torch.Tensor:
    """L text tokens -> [L, 3] positions: coordinates j - L on an axis of L read against a
    reference of 1, so scale 0 (no rotation) unless L = 1, where the one token sits at t = -1."""
    coords = torch.zeros(length, 3, dtype=torch.float64, device=device)
    coords[:, 0] = torch.arange(length, dtype=torch.float64, device=device) - length
    return magihuman_positions(coords, (length, 1, 1), (1, 1, 1))


def magihuman_angles(positions: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    """positions [S, 3] -> angles [S, 3n] ordered (t bands, h bands, w bands), float64."""
    return (positions.double()[:, :, None] * bands.double().to(positions.device)).flatten(1)


def apply_rope_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, S, H, D] in fp32 by the angles whose cos, sin [S, R/2] are given: dims
    i and i + R/2 (i < R/2) form a pair, (a, b) -> (a cos - b sin, b cos + a sin); dims R..
    pass unchanged."""
    half = cos.shape[-1]
    x32 = x.float()
    cos, sin = cos[:, None], sin[:, None]
    a, b, rest = x32[..., :half], x32[..., half : 2 * half], x32[..., 2 * half :]
    return torch.cat((a * cos - b * sin, b * cos + a * sin, rest), dim=-1).type_as(x)
