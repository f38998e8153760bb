"""One JoVA block: every token group's own weights around ONE joint self-attention.

A branch (video or audio) carries its tokens as one sequence: [text; modality] with
joint text attention, or just the modality tokens with cross-attention text. A block
splits each branch into token groups, each with its own `TokenStream` weights:
  dual-stream block   : text part and modality part of a branch are separate groups
                        (four groups: video text, video, audio text, audio);
  single-stream block : a branch's [text; modality] is one group (two groups).
Every group projects its tokens to q, k, v; all groups' tokens attend to each other in
one attention; each group then applies its own output projection and FFN. Nothing else
connects the modalities.

The residual stream is float32; projections run in the weights' compute dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .rope import apply_rope


class RMSNorm(nn.Module):
    """RMS norm over the full width (all heads together), as Wan2.1's q/k norm."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return normed.type_as(x) * self.weight


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input and weight dtypes (a model loaded
    in bf16 has bf16 affine weights, which F.layer_norm will not mix with float32 input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).type_as(x)


class Projections(nn.Module):
    """q, k, v, o projections with RMS-normed q and k (keys: q, k, v, o, norm_q, norm_k)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)


class CrossAttention(Projections):
    """Attention from a branch's tokens to its text (Wan-style; no RoPE)."""

    def forward(self, x: torch.Tensor, context: torch.Tensor, num_heads: int, attend) -> torch.Tensor:
        q = self.norm_q(self.q(x)).unflatten(-1, (num_heads, -1))  # [B, S, H, D]
        k = self.norm_k(self.k(context)).unflatten(-1, (num_heads, -1))  # [B, L, H, D]
        v = self.v(context).unflatten(-1, (num_heads, -1))
        return self.o(attend(q, k, v).flatten(2))


class InPlaceGELU(nn.Module):
    """tanh-approximated GELU written over its input.

    In the FFN its input is the first projection's fresh output, so this saves the largest
    buffer of a block ([tokens, ffn_dim]) at the FFN's peak; same values as nn.GELU (same
    kernel). Under autograd torch keeps its own copy of the input for the backward.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.gelu_(x, approximate="tanh")


def feed_forward(dim: int, ffn_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, ffn_dim), InPlaceGELU(), nn.Linear(ffn_dim, dim))


class TokenStream(nn.Module):
    """The weights one token group owns in a block.

    modulation [1, 6, dim] is added to the branch's projected timestep [B, 6, dim] to
    give shift/scale/gate for attention, then shift/scale/gate for the FFN.
    """

    def __init__(self, dim: int, ffn_dim: int, eps: float, cross_attention: bool):
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)
        self.norm1 = LayerNorm32(dim, eps, elementwise_affine=False)
        self.self_attn = Projections(dim, eps)
        self.norm2 = LayerNorm32(dim, eps, elementwise_affine=False)
        self.ffn = feed_forward(dim, ffn_dim)
        if cross_attention:
            self.norm3 = LayerNorm32(dim, eps, elementwise_affine=True)
            self.cross_attn = CrossAttention(dim, eps)

    def adaln(self, time: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """time [B, 6, dim] -> six [B, 1, dim] float32 modulation tensors; per-frame time
        [B, R, 6, dim] with `rows` [S] (each token's row) -> six [B, S, dim]."""
        if time.dim() == 4:
            mods = (self.modulation.float()[:, None] + time.float()).chunk(6, dim=2)  # [B, R, 1, dim] each
            return tuple(m.squeeze(2)[:, rows] for m in mods)
        return (self.modulation.float() + time.float()).chunk(6, dim=1)

    def qkv(self, x: torch.Tensor, mod, num_heads: int, dtype: torch.dtype):
        shift, scale = mod[0], mod[1]
        h = torch.addcmul(shift, self.norm1(x), 1 + scale).to(dtype)
        attn = self.self_attn
        q = attn.norm_q(attn.q(h)).unflatten(-1, (num_heads, -1))
        k = attn.norm_k(attn.k(h)).unflatten(-1, (num_heads, -1))
        v = attn.v(h).unflatten(-1, (num_heads, -1))
        return q, k, v

    def add_attention(self, x, attn_out, mod, dtype: torch.dtype) -> torch.Tensor:
        """Residual update by this group's part of the joint attention (output projection, gate)."""
        return torch.addcmul(x, self.self_attn.o(attn_out.flatten(2).to(dtype)).float(), mod[2])

    def text_and_ffn(self, x, mod, context, num_heads: int, attend, dtype: torch.dtype) -> torch.Tensor:
        """Residual updates after the joint attention: cross-attention to text, then FFN."""
        if context is not None:
            x = x + self.cross_attn(self.norm3(x).to(dtype), context, num_heads, attend).float()
        h = torch.addcmul(mod[3], self.norm2(x), 1 + mod[4]).to(dtype)
        return torch.addcmul(x, self.ffn(h).float(), mod[5])


@dataclass
class BranchState:
    """What the blocks need to know about a branch besides its tokens."""

    name: str  # "video" or "audio"
    time: torch.Tensor  # [B, 6, dim] projected timestep of this branch, or [B, R, 6, dim] per frame
    head_time: torch.Tensor  # [B, dim] time embedding for the head, or [B, S - n_text, dim] per token
    n_text: int  # leading text tokens in the branch's tokens (0 with cross-attention text)
    context: torch.Tensor | None  # [B, L, dim] text for cross-attention, else None
    # With per-frame time: each of the branch's S tokens' row of `time` [S]. Rows, not a
    # [B, S, 6, dim] tensor, are kept: the modulation is gathered per token in each block.
    time_rows: torch.Tensor | None = None


class JoVABlock(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, num_heads: int, eps: float, cross_text: bool, dual: bool):
        super().__init__()
        self.num_heads = num_heads
        self.dual = dual
        for branch in ("video", "audio"):
            self.add_module(branch, TokenStream(dim, ffn_dim, eps, cross_attention=cross_text))
            if dual:
                self.add_module(f"{branch}_text", TokenStream(dim, ffn_dim, eps, cross_attention=False))

    def groups(self, branch: BranchState) -> list[tuple[TokenStream, slice]]:
        """(weights, token slice) of each group of a branch, in sequence order."""
        stream = getattr(self, branch.name)
        if self.dual and branch.n_text:
            return [(getattr(self, f"{branch.name}_text"), slice(0, branch.n_text)), (stream, slice(branch.n_text, None))]
        return [(stream, slice(None))]

    def forward(self, branches: list[BranchState], tokens: list[torch.Tensor], cos, sin, attend, dtype) -> list[torch.Tensor]:
        """tokens[i] [B, S_i, dim] float32 belongs to branches[i]; cos/sin [sum S_i, D] (rope.cos_sin)
        cover all branches' tokens in order. Returns the updated tokens per branch."""
        work, lengths, q, k, v = self._joint_qkv(branches, tokens, dtype)
        out = attend(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)  # ONE joint attention
        # Tensors are released as soon as they are used (q, k, v here, the attention output
        # after the loop below): the FFN's large temporaries then reuse their memory instead
        # of faulting in fresh pages.
        del q, k, v
        updated = [
            (i, stream, mod, stream.add_attention(tokens[i][:, part], attn_out, mod, dtype))
            for (i, stream, part, mod), attn_out in zip(work, out.split(lengths, dim=1))
        ]
        del out
        pieces: list[list[torch.Tensor]] = [[] for _ in branches]
        for i, stream, mod, x in updated:
            pieces[i].append(stream.text_and_ffn(x, mod, branches[i].context, self.num_heads, attend, dtype))
        return [_join(p) for p in pieces]

    def _joint_qkv(self, branches: list[BranchState], tokens: list[torch.Tensor], dtype):
        """Every group's q, k, v [B, S_g, H, D], joined along the sequence in group order."""
        work = []  # (branch index, stream, slice, modulation)
        qs, ks, vs = [], [], []
        for i, branch in enumerate(branches):
            for stream, part in self.groups(branch):
                mod = stream.adaln(branch.time, None if branch.time_rows is None else branch.time_rows[part])
                q, k, v = stream.qkv(tokens[i][:, part], mod, self.num_heads, dtype)
                work.append((i, stream, part, mod))
                qs.append(q), ks.append(k), vs.append(v)
        return work, [q.shape[1] for q in qs], _join(qs), _join(ks), _join(vs)


def _join(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along the sequence; a lone part is returned as is (no copy)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
