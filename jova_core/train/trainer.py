"""The JoVA trainer: cached clips -> flow-matching steps -> native safetensors checkpoints.

Multi-process training goes through Hugging Face accelerate (DDP: `accelerate launch` or
`torchrun`; gloo on CPU, NCCL on GPU). Its batches are built so that the result does not
depend on the number of processes: the global batch of step s is a fixed slice of a
seeded per-epoch permutation, process r takes the r-th equal part of it, and every sample
draws its noise from its own seed (seed, step, position in the global batch). DDP averages
the per-process mean losses' gradients, which equals the gradient of the global mean.

Checkpoints (output_dir/checkpoint-NNNNNN/):
  transformer.safetensors  native JoVA file (adapters merged when training LoRA)
  lora.safetensors         the adapter weights alone (LoRA only; what resuming reads)
  ...
and at the end output_dir/transformer.safetensors, plus output_dir/lora.safetensors when
training LoRA: the small file to share and apply at a strength (jova_core.apply_lora,
the JoVA LoRA Loader node).
  optimizer.pt             optimizer + LR schedule state (read with weights_only=True)
  state.json               step, loss history, the recipe
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..checkpoint import build_from_state_dict, load_native, save_transformer
from ..config import preset_config
from ..files import atomic_output
from ..model.transformer import JoVATransformer
from ..weights import read_state_dict, torch_load
from .config import TrainConfig
from .data import CachedClips
from .loss import draw_noise, flow_losses
from .lora import adapter_state_dict, add_lora, merged_state_dict, save_adapter

FINAL_NAME = "transformer.safetensors"
ADAPTER_NAME = "lora.safetensors"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainResult:
    # One row per step run by THIS call: {"step", "loss", "video", "audio", "lr"} (global means).
    history: list[dict] = field(default_factory=list)
    final_path: str = ""
    last_checkpoint: str = ""
    wrote_final: bool = False  # False: the run was already at its steps, final_path is unchanged


def build_model(cfg: TrainConfig) -> JoVATransformer:
    """The starting transformer (float32, train mode): a native checkpoint or a fresh preset."""
    if cfg.init_checkpoint:
        model = load_native(cfg.init_checkpoint)
    else:
        # Seeded so every process (and every rerun) starts from identical weights.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = JoVATransformer(preset_config(cfg.preset, **cfg.model_overrides))
    model = model.float().train()
    if cfg.lora_rank:
        model = add_lora(model, cfg.lora_rank, cfg.lora_alpha)
    return model


def save_native(model: torch.nn.Module, lora: bool, path: str, metadata: dict[str, str]) -> None:
    """A native JoVA file of `model` (adapters folded in) through checkpoint.save_transformer."""
    if lora:  # a plain JoVA model holding the merged weights (checked key by key)
        state = {k: v.detach() for k, v in merged_state_dict(model).items()}
        model = build_from_state_dict(model.config, state, "the merged LoRA weights")
    save_transformer(model, path, extra_metadata=metadata, overwrite=True)


def latest_checkpoint(output_dir: str) -> str:
    if not os.path.isdir(output_dir):
        return ""
    found = [(int(m.group(1)), n) for n in os.listdir(output_dir) if (m := _CHECKPOINT_RE.match(n))]
    found = [(s, n) for s, n in found if os.path.exists(os.path.join(output_dir, n, "state.json"))]
    return os.path.join(output_dir, max(found)[1]) if found else ""


def global_batch_indices(step: int, batch_size: int, num_items: int, seed: int) -> list[int]:
    """Dataset indices of the global batch of `step`: consecutive slices of seeded
    per-epoch permutations (a batch may straddle two epochs)."""
    out = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, num_items)
        perm = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.append(int(perm[offset]))
    return out


def sample_seed(seed: int, step: int, position: int) -> int:
    return ((seed * 1_000_003 + step) * 65_537 + position) % (2**63)


def _lr_factor(cfg: TrainConfig):
    return lambda step: min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0


def train(
    cfg: TrainConfig,
    dataset: CachedClips | None = None,
    callback: Callable[[int, int, dict], None] | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Run (or continue) training as `cfg` says.

    dataset: the cached clips; None caches the recipe's clips first (cfg.data_dir or
    cfg.synthetic; with neither, the cache index in cfg.cache_dir is read). callback(step, total, row) runs after
    every step; raise from it to stop (the last checkpoint stays usable).
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    # Autocast is ours (below), not accelerate's: its setting is process-wide and fixed at
    # first use, while a recipe's is per run.
    accelerator = Accelerator()
    autocast_dtype = torch.bfloat16 if cfg.mixed_precision == "bf16" else None
    world, rank = accelerator.num_processes, accelerator.process_index
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must divide by the number of processes ({world})")
    micro = cfg.batch_size // world
    resume_from = latest_checkpoint(cfg.output_dir) if cfg.resume else ""
    if resume_from:  # before the caching and the model: a run that cannot continue fails at once
        with open(os.path.join(resume_from, "state.json"), encoding="utf-8") as f:
            reached = int(json.load(f)["step"])
        if reached > cfg.steps:
            raise ValueError(f"{cfg.output_dir} already holds step {reached} ({os.path.basename(resume_from)}), past "
                             f"the {cfg.steps} steps asked for: ask for more than {reached} steps to train on, or "
                             "choose another output_dir to start again")

    if dataset is None:
        from .encode import cached_dataset

        with accelerator.main_process_first():  # the main process encodes; the others then find it cached
            dataset = cached_dataset(cfg, show_progress=show_progress and accelerator.is_main_process)
    if cfg.batch_size > 1 and hasattr(dataset, "check_batchable"):
        note = dataset.check_batchable()  # before the first mixed batch, not at it
        if note and accelerator.is_main_process:
            tqdm.write(note, file=sys.stderr)
    if cfg.caption_dropout and getattr(dataset, "empty_text", None) is None:
        raise ValueError(
            f"caption_dropout {cfg.caption_dropout} needs the encoded empty prompt, and the cache in {cfg.cache_dir} "
            "has none for these clips: cache them again (set data_dir or synthetic in the recipe)"
        )

    model = build_model(cfg)
    lora = bool(cfg.lora_rank)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    # Stepped by hand once per optimizer step: accelerate's wrapper would step it once per process.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(cfg))

    start, history_all = 0, []
    final_path = os.path.join(cfg.output_dir, FINAL_NAME)
    if not resume_from and os.path.exists(final_path):
        raise FileExistsError(
            f"{final_path} exists from an earlier run; choose another output_dir or set resume true to continue it"
        )
    if resume_from:
        start, history_all = _load_checkpoint(resume_from, model, optimizer, schedule, lora)

    model.gradient_checkpointing = cfg.gradient_checkpointing
    model, optimizer = accelerator.prepare(model, optimizer)
    result = TrainResult(last_checkpoint=resume_from)
    metadata = _file_metadata(cfg, cfg.steps)

    bar = tqdm(total=cfg.steps, initial=start, desc="training", disable=not (show_progress and accelerator.is_main_process))
    for step in range(start, cfg.steps):
        indices = global_batch_indices(step, cfg.batch_size, len(dataset), cfg.seed)
        mine = list(range(rank * micro, (rank + 1) * micro))  # positions in the global batch
        mine_batch = dataset.batch([indices[p] for p in mine], indices)  # cut to the global batch's shortest clip
        batch = {k: v.to(accelerator.device) for k, v in mine_batch.items()}
        noise = draw_noise(
            batch, [sample_seed(cfg.seed, step, p) for p in mine], cfg.shift, cfg.caption_dropout,
            cfg.reference_probability, cfg.clean_audio_probability, cfg.clean_video_probability,
            cfg.clean_context_probability, cfg.clean_context_frames,
        )
        with torch.autocast(accelerator.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss_v, loss_a = flow_losses(model, batch, noise, cfg.mouth_weight)
            loss = loss_v + cfg.audio_loss_weight * loss_a
        accelerator.backward(loss)
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        lr = schedule.get_last_lr()[0]
        schedule.step()

        means = accelerator.reduce(torch.stack([loss.detach(), loss_v.detach(), loss_a.detach()]).float(), "mean")
        row = {"step": step + 1, "loss": means[0].item(), "video": means[1].item(), "audio": means[2].item(), "lr": lr}
        result.history.append(row)
        history_all.append(row)
        bar.update(1)
        if (step + 1) % max(cfg.log_every, 1) == 0:
            bar.set_postfix(loss=f"{row['loss']:.4f}", video=f"{row['video']:.4f}", audio=f"{row['audio']:.4f}")
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            result.last_checkpoint = _save_checkpoint(accelerator, cfg, model, optimizer, schedule, step + 1, history_all, lora)
        if callback is not None:
            callback(step + 1, cfg.steps, row)
    bar.close()

    if cfg.steps > start or not os.path.exists(final_path):
        result.last_checkpoint = _save_checkpoint(accelerator, cfg, model, optimizer, schedule, cfg.steps, history_all, lora)
        if accelerator.is_main_process:
            save_native(accelerator.unwrap_model(model), lora, final_path, metadata)
            if lora:
                save_adapter(accelerator.unwrap_model(model), os.path.join(cfg.output_dir, ADAPTER_NAME),
                             cfg.lora_rank, cfg.lora_alpha)
        result.wrote_final = True
    accelerator.wait_for_everyone()
    result.final_path = final_path
    return result


def _file_metadata(cfg: TrainConfig, step: int) -> dict[str, str]:
    """The recipe's extra metadata (JSON-encoded where not a string), the recipe, the step."""
    metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in cfg.metadata.items()}
    return {**metadata, "train_config": cfg.to_json(), "trained_steps": str(step)}


def _save_checkpoint(accelerator, cfg, model, optimizer, schedule, step, history, lora) -> str:
    path = os.path.join(cfg.output_dir, f"checkpoint-{step:06d}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        os.makedirs(path, exist_ok=True)
        unwrapped = accelerator.unwrap_model(model)
        save_native(unwrapped, lora, os.path.join(path, FINAL_NAME), _file_metadata(cfg, step))
        if lora:
            save_adapter(unwrapped, os.path.join(path, ADAPTER_NAME), cfg.lora_rank, cfg.lora_alpha)
        with atomic_output(os.path.join(path, "optimizer.pt"), overwrite=True) as partial:
            torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()}, partial)
        # state.json last: a checkpoint folder counts only once it is complete.
        with atomic_output(os.path.join(path, "state.json"), overwrite=True) as partial, open(partial, "w", encoding="utf-8") as f:
            json.dump({"step": step, "history": history, "config": json.loads(cfg.to_json())}, f, indent=1)
    accelerator.wait_for_everyone()
    return path


def _load_checkpoint(path, model, optimizer, schedule, lora) -> tuple[int, list[dict]]:
    with open(os.path.join(path, "state.json"), encoding="utf-8") as f:
        state = json.load(f)
    if lora:
        adapters = read_state_dict(os.path.join(path, ADAPTER_NAME))
        expected = adapter_state_dict(model)
        if set(adapters) != set(expected):
            raise KeyError(
                f"{path}/{ADAPTER_NAME} holds different adapters than this recipe makes "
                f"(missing {sorted(set(expected) - set(adapters))[:4]}, unexpected {sorted(set(adapters) - set(expected))[:4]})"
            )
        model.load_state_dict(adapters, strict=False)
    else:
        model.load_state_dict(load_native(os.path.join(path, FINAL_NAME)).state_dict(), strict=True)
    saved = torch_load(os.path.join(path, "optimizer.pt"))
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    return int(state["step"]), list(state["history"])
