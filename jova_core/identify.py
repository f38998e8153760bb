"""What a weight file is, from its key names and metadata alone (no tensors read).

`identify` names the transformers JoVA can load ("jova", "wan2.1", "javisdit", "magihuman"), the
codec files ("wan-vae", "mmaudio-vae", "bigvgan", "audioldm2-vae", "audioldm2-vocoder")
and the files people pick by mistake (text encoders, LoRAs, ...), and says where each
belongs. The one home of key-only file recognition: the transformer loader and the
codec loaders both name files through it, so it imports nothing from jova_core.
`unhosted_release_part` names, by their release folder, the parts of a release that share
keys with what JoVA runs (MagiHuman's super-resolution DiTs) or that it does not read (its
Turbo VAE), before anything is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

LOADABLE = ("jova", "wan2.1", "javisdit", "magihuman")
# Wrappers that training / UI tools put in front of every key of a transformer.
WRAPPER_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "module.", "model.")
JAVISDIT_MARKER = "audio_patch_embedding.weight"


@dataclass(frozen=True)
class FileKind:
    name: str  # "jova", "wan2.1", "javisdit", or what else it looks like ("wan-vae", "lora", ...)
    description: str  # for messages: "a Wan2.1 transformer (diffusers layout)"
    hint: str = ""  # what to do with it when it is not a JoVA transformer

    @property
    def loadable(self) -> bool:
        return self.name in LOADABLE


def wan_layout(keys) -> str | None:
    """'original' or 'diffusers' if these (prefix-stripped) keys are a Wan transformer's, else None."""
    if "patch_embedding.weight" not in keys:
        return None
    if "head.head.weight" in keys and "blocks.0.self_attn.q.weight" in keys:
        return "original"
    if "proj_out.weight" in keys and "blocks.0.attn1.to_q.weight" in keys:
        return "diffusers"
    return None


def is_javisdit(keys) -> bool:
    """True for (prefix-stripped) keys of a JavisDiT++ transformer: Wan plus audio tokens."""
    return JAVISDIT_MARKER in keys and "blocks.0.audio_ffn.0.weight" in keys


MAGIHUMAN_MARKERS = ("adapter.rope.bands", "block.layers.0.attention.linear_qkv.weight")


def is_magihuman_keys(keys) -> bool:
    """True for (prefix-stripped) keys of a daVinci-MagiHuman DiT."""
    return all(m in keys for m in MAGIHUMAN_MARKERS)


def _strip(keys: list[str]) -> list[str]:
    for prefix in WRAPPER_PREFIXES:
        if keys and all(k.startswith(prefix) for k in keys):
            return [k[len(prefix):] for k in keys]
    return keys


def _any(keys: list[str], *fragments: str) -> bool:
    return any(f in k for k in keys for f in fragments)


# (name, description, test on the key list, hint), tried in order after the transformers.
_NOT_TRANSFORMERS = [
    ("sao-vae", "the Stable Audio Open (Oobleck) audio VAE, as daVinci-MagiHuman uses it",
     lambda k: (_any(k, "encoder.layers.0.weight_g") and _any(k, "decoder.layers.1.layers.0.alpha"))
     or _any(k, "encoder.block.0.res_unit1.conv1.weight_v"),  # diffusers' vae/ copy
     "load it alone (no vocoder) with jova_core.load_audio_codec / the JoVA Audio Codec Loader, from models/jova_audio"),
    ("lora", "a LoRA (adapter weights only)",
     lambda k: _any(k, "lora_A", "lora_B", "lora_down", "lora_up", ".lora.", "lora_unet_"),
     "load the base transformer here and apply the LoRA with the JoVA LoRA Loader (models/loras)"),
    ("jova-raw", "a JoVA state dict without its config (no 'jova_config' metadata)",
     lambda k: "video.patch_embedding.weight" in k and "blocks.0.video.self_attn.q.weight" in k,
     "re-save it with jova_core.checkpoint.save_transformer so the config travels with it"),
    ("wan-vae", "the Wan2.1 video VAE (or Wan2.2's, MagiHuman's)",
     lambda k: _any(k, "encoder.downsamples.", "decoder.upsamples.", "decoder.up_blocks.0.upsampler."),
     "load it with jova_core.load_video_codec (or ComfyUI's VAELoader) from models/vae"),
    ("mmaudio-vae", "the MMAudio audio VAE",
     lambda k: "data_mean" in k and _any(k, "encoder.learnable_gain", "decoder.conv_out"),
     "load it with jova_core.load_audio_codec"),
    ("bigvgan", "a BigVGAN vocoder (MMAudio's audio decoder)",
     lambda k: _any(k, "conv_pre.") and _any(k, "ups.0.0."),
     "load it with jova_core.load_audio_codec, paired with an MMAudio VAE"),
    ("audioldm2-vocoder", "AudioLDM2's HiFi-GAN vocoder (vocoder/model.safetensors)",
     lambda k: _any(k, "conv_pre.") and _any(k, "upsampler.0.") and "mean" in k and "scale" in k,
     "load it with jova_core.load_audio_codec, paired with AudioLDM2's VAE (vae/diffusion_pytorch_model.safetensors)"),
    ("t5gemma", "the T5Gemma text encoder(-decoder), as daVinci-MagiHuman uses it",
     lambda k: _any(k, "encoder.layers.0.pre_self_attn_layernorm.weight"),
     "put the whole downloaded google/t5gemma-9b-9b-ul2 folder in models/text_encoders and pick it in the JoVA "
     "T5Gemma Text Encoder"),
    ("text-encoder", "a T5 / umT5 text encoder",
     lambda k: _any(k, "SelfAttention.q.weight", "token_embedding.weight", "shared.weight"),
     "load umT5-XXL with ComfyUI's CLIPLoader (type 'wan') from models/text_encoders"),
    ("clip-vision", "a CLIP image encoder",
     lambda k: _any(k, "visual.transformer.", "vision_model.encoder."),
     "JoVA does not use a CLIP image encoder"),
    # AudioLDM2's VAE is diffusers' AutoencoderKL with three resolution levels; image VAEs
    # (Stable Diffusion, FLUX) have four.
    ("audioldm2-vae", "AudioLDM2's VAE (vae/diffusion_pytorch_model.safetensors)",
     lambda k: "quant_conv.weight" in k and _any(k, "encoder.down_blocks.2.") and not _any(k, "encoder.down_blocks.3."),
     "load it with jova_core.load_audio_codec, paired with AudioLDM2's vocoder (vocoder/model.safetensors)"),
    ("image-vae", "an image VAE in diffusers AutoencoderKL layout",
     lambda k: _any(k, "encoder.down_blocks.0.resnets.0.") and _any(k, "quant_conv"),
     "JoVA does not use image VAEs; its video VAEs are Wan2.1's and Wan2.2's"),
    ("mmaudio-net", "the MMAudio flow network",
     lambda k: _any(k, "joint_blocks.", "audio_input_proj."),
     "JoVA generates audio with its own transformer; only MMAudio's VAE and vocoder are used"),
]


def identify(keys: list[str], metadata: dict[str, str] | None = None) -> FileKind:
    """Classify a weight file by its (tensor) key names and safetensors metadata."""
    metadata = metadata or {}
    if metadata.get("format") == "jova" and "jova_config" in metadata:
        return FileKind("jova", "a native JoVA checkpoint")
    keys = list(keys)
    bare = _strip(keys)
    if "scaled_fp8" in bare or _any(bare, ".scale_weight"):
        return FileKind("fp8-scaled", "a ComfyUI fp8_scaled checkpoint (weights with per-tensor scales)",
                        "use the fp16/bf16 (or plain fp8_e4m3fn) file of the same model")
    if is_javisdit(set(bare)):
        return FileKind("javisdit", "a JavisDiT++ transformer")
    if is_magihuman_keys(set(bare)):
        # Its base, distill and super-resolution DiTs share these keys; the loader tells them
        # apart by the release folder and refuses the SR DiTs (jova_core.checkpoint).
        return FileKind("magihuman", "a daVinci-MagiHuman DiT (base, distill or super-resolution: they share these keys)")
    layout = wan_layout(set(bare))
    if layout:
        if "img_emb.proj.0.weight" in bare or "condition_embedder.image_embedder.norm1.weight" in bare:
            return FileKind("wan-i2v", "a Wan image-to-video transformer",
                            "JoVA converts the Wan2.1 text-to-video transformer (1.3B or 14B)")
        where = "ComfyUI layout" if bare[0] != keys[0] else f"{layout} layout"
        return FileKind("wan2.1", f"a Wan2.1 transformer ({where})")
    for name, description, test, hint in _NOT_TRANSFORMERS:
        if test(bare):
            return FileKind(name, description, hint)
    sample = ", ".join(sorted(keys)[:5])
    return FileKind("unknown", f"an unrecognised checkpoint (first keys: {sample})",
                    "JoVA loads native JoVA files, Wan2.1 text-to-video transformers and JavisDiT++")


# Parts of daVinci-MagiHuman's release that JoVA does not run, told by their release folder
# (the SR DiTs have the base DiT's keys; the Turbo VAE is a training checkpoint).
UNHOSTED_RELEASE_FOLDERS = {
    "540p_sr": "daVinci-MagiHuman's 540p super-resolution DiT, which upscales a base clip with local attention; "
               "JoVA runs its base/ and distill/ DiTs only: pick one of those",
    "1080p_sr": "daVinci-MagiHuman's 1080p super-resolution DiT, which upscales a base clip with local attention; "
                "JoVA runs its base/ and distill/ DiTs only: pick one of those",
    "turbo_vae": "daVinci-MagiHuman's optional Turbo VAE decoder, which JoVA does not run: decode with the Wan2.2 "
                 "VAE (wan2.2_vae.safetensors in models/vae)",
}


def unhosted_release_part(path: str) -> str | None:
    """What `path` is when it lies in (or is) a release folder JoVA does not run, else None."""
    parts = os.path.normpath(os.path.abspath(path)).lower().split(os.sep)
    return next((UNHOSTED_RELEASE_FOLDERS[p] for p in reversed(parts[-2:]) if p in UNHOSTED_RELEASE_FOLDERS), None)
