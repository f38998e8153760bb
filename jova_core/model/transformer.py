"""The JoVA transformer: two branches (video, audio) that meet only in joint self-attention.

    video latents [B,16,F,H,W] --patchify--> video tokens ┐
    audio latents [B,C,Fa,T]   --patchify--> audio tokens ├─ N x JoVABlock (one joint attention each)
    text [B,L,text_dim] --per-branch MLP--> text tokens   ┘        (or per-branch cross-attention)
    -> per-branch AdaLN head -> unpatchify -> velocities

Each branch has its own weights everywhere (patch embedding, text and time MLPs, every
block's streams, head); ``audio`` starts as a copy of ``video`` in the paper's recipe
(see jova_core.convert.wan). Parameter names follow Wan2.1's inside each branch, so
``blocks.3.video.self_attn.q.weight`` is Wan's ``blocks.3.self_attn.q.weight``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from ..config import JoVAConfig
from ..geometry import AUDIO_GEOMETRIES
from . import rope
from .attention import get_attention
from .blocks import BranchState, JoVABlock, LayerNorm32
from .hosted import Hosting


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Wan's sinusoid of t in [0, 1000]: [cos, sin] at frequencies 10000^(-i/half)."""
    half = dim // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = torch.outer(t.double(), freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).float()


class Head(nn.Module):
    """AdaLN-modulated output projection (keys: modulation [1,2,dim], head)."""

    def __init__(self, dim: int, out_features: int, eps: float):
        super().__init__()
        self.norm = LayerNorm32(dim, eps, elementwise_affine=False)
        self.head = nn.Linear(dim, out_features)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, time_emb: torch.Tensor, dtype) -> torch.Tensor:
        """time_emb [B, dim], or [B, S, dim] per token."""
        if time_emb.dim() == 3:
            shift, scale = (m.squeeze(2) for m in (self.modulation.float()[:, None] + time_emb.float()[:, :, None]).chunk(2, dim=2))
        else:
            shift, scale = (self.modulation.float() + time_emb.float()[:, None]).chunk(2, dim=1)
        return self.head((self.norm(x) * (1 + scale) + shift).to(dtype))


class BranchEnds(nn.Module):
    """What a branch has outside the blocks: patch embedding, text and time MLPs, head."""

    def __init__(self, cfg: JoVAConfig, patch_embedding: nn.Module, out_features: int):
        super().__init__()
        self.patch_embedding = patch_embedding
        self.text_embedding = nn.Sequential(
            nn.Linear(cfg.text_dim, cfg.dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.dim, cfg.dim)
        )
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))
        self.head = Head(cfg.dim, out_features, cfg.eps)

    def embed_time(self, t: torch.Tensor, freq_dim: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """t [B] -> (time embedding [B, dim] for the head, projected [B, 6, dim] for blocks)."""
        emb = self.time_embedding(timestep_features(t, freq_dim).to(dtype)).float()
        return emb, self.time_projection(emb.to(dtype)).float().unflatten(1, (6, -1))


class JoVATransformer(nn.Module):
    def __init__(self, config: JoVAConfig, attention: str = "sdpa"):
        super().__init__()
        self.config = cfg = config
        pt, ph, pw = cfg.video_patch_size
        pf, pa = cfg.audio_patch_size
        self.video = BranchEnds(
            cfg,
            nn.Conv3d(cfg.video_in_channels + cfg.video_condition_channels, cfg.dim, cfg.video_patch_size, cfg.video_patch_size),
            cfg.video_out_channels * pt * ph * pw,
        )
        self.audio = BranchEnds(
            cfg,
            nn.Conv2d(cfg.audio_in_channels, cfg.dim, cfg.audio_patch_size, cfg.audio_patch_size),
            cfg.audio_out_channels * pf * pa,
        )
        cross = cfg.text_attention == "cross"
        self.blocks = nn.ModuleList(
            JoVABlock(cfg.dim, cfg.ffn_dim, cfg.num_heads, cfg.eps, cross_text=cross, dual=i < cfg.dual_stream_layers)
            for i in range(cfg.num_layers)
        )
        self.set_attention(attention)
        self.gradient_checkpointing = False
        self.reset_parameters()

    def set_attention(self, name: str) -> None:
        self.attention_backend = name
        self._attend = get_attention(name)

    def compile_blocks(self, **options) -> None:
        """torch.compile each block's forward in place (regional compilation).

        The blocks share one code object, so torch compiles it once per kind of block
        (dual-, single-stream) and input shape and reuses it for every block of that kind:
        a first step that compiles for seconds to minutes instead of the whole model's
        graph. Only `forward` is compiled: hooks on a block (block swap moving it between
        devices) stay outside the compiled region. `options` go to torch.compile."""
        for block in self.blocks:
            block.forward = _compiled_with_hook_guards(block.forward, **options)

    @property
    def hosting(self) -> Hosting:
        """What the sampler and nodes need to know (jova_core.model.hosted)."""
        cfg = self.config
        audio_codecs = [g.name for g in AUDIO_GEOMETRIES if g.channels == cfg.audio_in_channels]
        return Hosting(
            name="a JoVA transformer", geometry=cfg.geometry, timesteps="per-modality",
            reference="condition-channels" if cfg.video_condition_channels else "noised-first-frame",
            modes=("t2va", "i2va", "a2v", "v2a", "t2v", "i2v", "t2a"),
            modes_note="per-modality timesteps hold any modality clean or leave it out",
            text_dim=cfg.text_dim, text_len=cfg.text_len, separate_audio_text=True, trims_text=False,
            video_codec="Wan2.1 VAE", audio_codec=" or ".join(audio_codecs) or "its audio VAE",
            text_encoder="umT5-XXL",
        )

    def swappable_blocks(self) -> nn.ModuleList:
        return self.blocks

    def reset_parameters(self) -> None:
        """Wan2.1's initialisation: xavier linears, small text/time MLPs, zero heads."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for ends in (self.video, self.audio):
            nn.init.xavier_uniform_(ends.patch_embedding.weight.flatten(1))
            for mlp in (ends.text_embedding, ends.time_embedding):
                for layer in mlp:
                    if isinstance(layer, nn.Linear):
                        nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(ends.head.head.weight)

    @property
    def compute_dtype(self) -> torch.dtype:
        dtype = self.video.time_embedding[0].weight.dtype
        return torch.bfloat16 if dtype in (torch.float8_e4m3fn, torch.float8_e5m2) else dtype

    def forward(
        self,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        t_video: torch.Tensor | float | None = None,
        t_audio: torch.Tensor | float | None = None,
        text: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
        fps: float | None = None,
        text_audio: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Predict flow-matching velocities (noise - data) for video and audio latents.

        video:     [B, video_in_channels, F, H, W] noisy Wan2.1 latents (normalised), or None.
        audio:     [B, audio_in_channels, T] or [B, C, Fa, T] noisy audio latents, or None.
        t_video, t_audio: [B] or scalars on Wan's scale t = 1000 * sigma, sigma in [0, 1]
                   (0 = clean). Each branch is modulated by its own timestep, so one
                   modality can be held clean (t=0) while the other is generated.
                   Or [B or 1, frames]: one timestep per latent frame of that modality
                   (video F, audio T), so part of it (context frames, an audio prefix)
                   is held clean at t=0 while the rest is generated. Every token of a
                   frame gets its frame's timestep (the largest in a patch spanning
                   several frames); joint-attention text tokens get the branch's largest.
                   Each block then gathers its modulation per token: six [B, tokens, dim]
                   tensors while it runs, where a scalar timestep needs [B, 1, dim].
        text:      [B, L, text_dim] text-encoder hidden states, read by both branches.
        text_audio: optional different text for the audio branch (e.g. its own negative
                   prompt for per-modality guidance); defaults to `text`.
        reference: [B, video_condition_channels, F, H, W] first-frame latent + mask
                   (only for models with video_condition_channels; zeros when omitted).
        fps:       video frame rate, for the temporally aligned audio RoPE.
        Returns (video velocity like `video`, audio velocity like `audio`); None where the
        input was None.
        """
        cfg = self.config
        if video is None and audio is None:
            raise ValueError("JoVATransformer needs video latents, audio latents, or both")
        if text is None:
            raise ValueError("JoVATransformer needs text hidden states [B, L, text_dim]")
        self._check_inputs(video, audio, fps)
        dtype = self.compute_dtype
        batch = (video if video is not None else audio).shape[0]
        text = self._prepare_text(text, batch, dtype)
        text_audio = text if text_audio is None else self._prepare_text(text_audio, batch, dtype)

        branches: list[BranchState] = []
        states: list[torch.Tensor] = []
        angles: list[torch.Tensor] = []
        video_grid = None
        if video is not None:
            video_in = self._with_reference(video, reference)
            tokens, video_grid = self._patchify(self.video, video_in.to(dtype), cfg.video_patch_size)
            frame_of_token = torch.arange(video_grid[0], device=tokens.device).repeat_interleave(video_grid[1] * video_grid[2])
            self._add_branch(branches, states, "video", tokens, t_video, text, batch, dtype,
                             frame_of_token, video.shape[2], cfg.video_patch_size[0])
            angles.append(rope.video_positions(video_grid, device=tokens.device))
        if audio is not None:
            audio_4d = audio[:, :, None] if audio.dim() == 3 else audio
            tokens, audio_grid = self._patchify(self.audio, audio_4d.to(dtype), cfg.audio_patch_size)
            frame_of_token = torch.arange(audio_grid[1], device=tokens.device).repeat(audio_grid[0])  # (freq, time) raster
            self._add_branch(branches, states, "audio", tokens, t_audio, text_audio, batch, dtype,
                             frame_of_token, audio.shape[-1], cfg.audio_patch_size[1])
            angles.append(self._audio_positions(audio_grid, video_grid, fps, tokens.device))

        cos, sin = self._rope(branches, angles)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                states = checkpoint(block, branches, states, cos, sin, self._attend, dtype, use_reentrant=False)
            else:
                states = block(branches, states, cos, sin, self._attend, dtype)

        outputs = {
            b.name: getattr(self, b.name).head(tokens[:, b.n_text :], b.head_time, dtype).float()
            for b, tokens in zip(branches, states)
        }
        video_out = audio_out = None
        if video is not None:
            video_out = self._unpatchify_video(outputs["video"], video_grid).to(video.dtype)
        if audio is not None:
            audio_out = self._unpatchify_audio(outputs["audio"], audio_grid).reshape(audio.shape).to(audio.dtype)
        return video_out, audio_out

    # -- pieces of forward -------------------------------------------------------------

    def _check_inputs(self, video, audio, fps) -> None:
        """One-line errors for inputs the model cannot take (instead of torch's from deep inside)."""
        geometry = self.config.geometry
        if video is not None:
            geometry.check_video_latents(video.shape)
        if audio is not None:
            geometry.check_audio_latents(audio.shape)
        if video is not None and audio is not None and video.shape[0] != audio.shape[0]:
            raise ValueError(f"video batch {video.shape[0]} and audio batch {audio.shape[0]} differ; give both the same batch")
        if fps is not None and not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"fps must be a positive frame rate, got {fps}")

    def _prepare_text(self, text: torch.Tensor, batch: int, dtype) -> torch.Tensor:
        cfg = self.config
        if text.dim() != 3 or text.shape[-1] != cfg.text_dim:
            raise ValueError(f"text must be [B, L, {cfg.text_dim}] hidden states, got {list(text.shape)}")
        if text.shape[0] not in (1, batch):
            raise ValueError(
                f"text holds {text.shape[0]} prompts but the latents a batch of {batch}: give one prompt, or one per latent"
            )
        text = text.to(dtype).expand(batch, -1, -1)
        if cfg.text_attention == "cross" and text.shape[1] < cfg.text_len:
            # Wan2.1 zero-pads the prompt to text_len before its text MLP.
            text = torch.cat([text, text.new_zeros(batch, cfg.text_len - text.shape[1], text.shape[2])], dim=1)
        return text

    def _with_reference(self, video: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        extra = self.config.video_condition_channels
        if reference is not None and not extra:
            raise ValueError(
                "this model has no reference-image channels; pass the reference to the sampler, "
                "which holds the first latent frame instead"
            )
        if not extra:
            return video
        if reference is None:
            reference = video.new_zeros(video.shape[0], extra, *video.shape[2:])
        if reference.shape[1] != extra or reference.shape[2:] != video.shape[2:]:
            raise ValueError(f"reference must be [B, {extra}, {', '.join(map(str, video.shape[2:]))}], got {list(reference.shape)}")
        return torch.cat([video, reference.to(video.dtype)], dim=1)

    @staticmethod
    def _patchify(ends: BranchEnds, latents: torch.Tensor, patch: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
        sizes = latents.shape[2:]
        if any(n % p for n, p in zip(sizes, patch)):
            raise ValueError(f"latent sizes {list(sizes)} must be multiples of the patch size {list(patch)}")
        x = ends.patch_embedding(latents)  # [B, dim, *grid]
        # The transpose is a strided view; without one copy here every block's norms copy the
        # residual again and its elementwise ops run on transposed memory (as diffusers' Wan notes).
        return x.flatten(2).transpose(1, 2).float().contiguous(), tuple(x.shape[2:])

    def _add_branch(self, branches, states, name, tokens, t, text, batch, dtype, frame_of_token, frames, patch) -> None:
        if t is None:
            raise ValueError(f"t_{name} is required when {name} latents are given")
        ends: BranchEnds = getattr(self, name)
        t = torch.as_tensor(t, device=tokens.device, dtype=torch.float32)
        text_tokens = ends.text_embedding(text).float()
        joint = self.config.text_attention == "joint"
        rows = None
        if t.dim() == 2:
            head_time, time, rows = self._per_frame_time(ends, name, t, batch, frames, patch, frame_of_token,
                                                         text_tokens.shape[1] if joint else 0, dtype)
        else:
            head_time, time = ends.embed_time(t.reshape(-1).expand(batch), self.config.freq_dim, dtype)
        if joint:
            branches.append(BranchState(name, time, head_time, text_tokens.shape[1], None, rows))
            states.append(torch.cat([text_tokens, tokens], dim=1))
        else:
            branches.append(BranchState(name, time, head_time, 0, text_tokens.to(dtype), rows))
            states.append(tokens)

    def _per_frame_time(self, ends, name, t, batch, frames, patch, frame_of_token, n_text, dtype):
        """Per-frame timesteps [B or 1, frames] -> (head time [B, S, dim] per modality token,
        block time [B, R, 6, dim] per row, each of the n_text + S tokens' row [n_text + S]):
        a row per patch frame, and one more for the text tokens."""
        if t.shape[0] not in (1, batch) or t.shape[1] != frames:
            raise ValueError(f"t_{name} per latent frame must be [B, {frames}] (one timestep per {name} latent frame), "
                             f"got {list(t.shape)}")
        t = t.expand(batch, -1).unflatten(1, (-1, patch)).amax(-1)  # [B, frames / patch]
        head_time, time = ends.embed_time(t.reshape(-1), self.config.freq_dim, dtype)
        head_time = head_time.unflatten(0, t.shape)[:, frame_of_token]  # [B, S, dim]
        time = time.unflatten(0, t.shape)  # [B, F', 6, dim]
        rows = frame_of_token
        if n_text:
            _, text_time = ends.embed_time(t.amax(1), self.config.freq_dim, dtype)  # [B, 6, dim]
            time = torch.cat([time, text_time[:, None]], dim=1)
            rows = torch.cat([frame_of_token.new_full((n_text,), t.shape[1]), frame_of_token])
        return head_time, time, rows

    def _audio_positions(self, grid, video_grid, fps, device) -> torch.Tensor:
        cfg = self.config
        if cfg.audio_rope == "javisdit":
            return rope.audio_positions_javisdit(grid, video_grid or (1, 0, 0), device=device)
        return rope.audio_positions_aligned(
            grid, cfg.audio_patch_size[1], cfg.audio_latent_rate, fps or cfg.default_fps,
            cfg.video_temporal_stride, device=device,
        )

    def _rope(self, branches: list[BranchState], positions: list[torch.Tensor]):
        """cos/sin for the joint sequence: per branch, [text (unrotated); modality]."""
        head_dim, theta = self.config.head_dim, self.config.rope_theta
        angles = []
        for b, pos in zip(branches, positions):
            if b.n_text:
                angles.append(rope.identity_angles(b.n_text, head_dim, device=pos.device))
            angles.append(rope.rope_angles(pos, head_dim, theta))
        return rope.cos_sin(torch.cat(angles))

    def _unpatchify_video(self, x: torch.Tensor, grid) -> torch.Tensor:
        pt, ph, pw = self.config.video_patch_size
        f, h, w = grid
        x = x.reshape(x.shape[0], f, h, w, pt, ph, pw, -1)
        return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(x.shape[0], -1, f * pt, h * ph, w * pw)

    def _unpatchify_audio(self, x: torch.Tensor, grid) -> torch.Tensor:
        pf, pa = self.config.audio_patch_size
        nf, nt = grid
        x = x.reshape(x.shape[0], nf, nt, pf, pa, -1)
        return x.permute(0, 5, 1, 3, 2, 4).reshape(x.shape[0], -1, nf * pf, nt * pa)


def _compiled_with_hook_guards(forward, **options):
    """torch.compile(forward), compiled with guards on the hooks of the modules it runs:
    torch skips those guards by default, and a LoRA attached to or removed from the
    block's layers (jova_core.lora adds forward hooks) would then go unseen by code
    compiled before."""
    compiled = torch.compile(forward, **options)

    @functools.wraps(forward)
    def run(*args, **kwargs):
        with torch._dynamo.config.patch(skip_nnmodule_hook_guards=False):
            return compiled(*args, **kwargs)

    return run


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
