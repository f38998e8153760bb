"""What a checkpoint file is, from its key names and metadata alone (no tensors read).

`identify` names the transformers JoVA can load ("jova", "wan2.1", "javisdit") and,
for the files people pick by mistake in a model folder (VAEs, text encoders, vocoders,
LoRAs, ...), says what the file looks like and where it belongs instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from .javisdit import is_javisdit
from .source import WRAPPER_PREFIXES
from .wan import wan_layout

LOADABLE = ("jova", "wan2.1", "javisdit")


@dataclass(frozen=True)
class FileKind:
    name: str  # "jova", "wan2.1", "javisdit", or what else it looks like ("wan-vae", "lora", ...)
    description: str  # for messages: "a Wan2.1 transformer (diffusers layout)"
    hint: str = ""  # what to do with it when it is not a JoVA transformer

    @property
    def loadable(self) -> bool:
        return self.name in LOADABLE


def _strip(keys: list[str]) -> list[str]:
    for prefix in WRAPPER_PREFIXES:
        if keys and all(k.startswith(prefix) for k in keys):
            return [k[len(prefix):] for k in keys]
    return keys


def _any(keys: list[str], *fragments: str) -> bool:
    return any(f in k for k in keys for f in fragments)


# (name, description, test on the key list, hint), tried in order after the transformers.
_NOT_TRANSFORMERS = [
    ("magihuman", "a daVinci-MagiHuman DiT (its base, distill and super-resolution DiTs share these keys)",
     lambda k: "adapter.rope.bands" in k and "block.layers.0.attention.linear_qkv.weight" in k,
     "jova_core.checkpoint.load_magihuman builds it; the sampler and nodes do not run it yet"),
    ("sao-vae", "the Stable Audio Open (Oobleck) audio VAE, as daVinci-MagiHuman uses it",
     lambda k: _any(k, "encoder.layers.0.weight_g") and _any(k, "decoder.layers.1.layers.0.alpha"),
     "JoVA has no Stable Audio Open codec yet; its audio codec is MMAudio's VAE (jova_core.load_audio_codec)"),
    ("lora", "a LoRA (adapter weights only)",
     lambda k: _any(k, "lora_A", "lora_B", "lora_down", "lora_up", ".lora.", "lora_unet_"),
     "load the base transformer here and apply the LoRA with the JoVA LoRA Loader (models/loras)"),
    ("jova-raw", "a JoVA state dict without its config (no 'jova_config' metadata)",
     lambda k: "video.patch_embedding.weight" in k and "blocks.0.video.self_attn.q.weight" in k,
     "re-save it with jova_core.checkpoint.save_transformer so the config travels with it"),
    ("wan-vae", "the Wan2.1 video VAE",
     lambda k: _any(k, "encoder.downsamples.", "decoder.upsamples.", "decoder.up_blocks.0.upsampler"),
     "load it with jova_core.load_video_codec (or ComfyUI's VAELoader) from models/vae"),
    ("mmaudio-vae", "the MMAudio audio VAE",
     lambda k: "data_mean" in k and _any(k, "encoder.learnable_gain", "decoder.conv_out"),
     "load it with jova_core.load_audio_codec"),
    ("vocoder", "a BigVGAN / HiFi-GAN vocoder",
     lambda k: _any(k, "conv_pre.", "generator.conv_pre") and _any(k, "ups.0.", "upsampler.0", "resblocks.0."),
     "load it with jova_core.load_audio_codec"),
    ("text-encoder", "a T5 / umT5 text encoder",
     lambda k: _any(k, "SelfAttention.q.weight", "token_embedding.weight", "shared.weight"),
     "load umT5-XXL with ComfyUI's CLIPLoader (type 'wan') from models/text_encoders"),
    ("clip-vision", "a CLIP image encoder",
     lambda k: _any(k, "visual.transformer.", "vision_model.encoder."),
     "JoVA does not use a CLIP image encoder"),
    ("image-vae", "a VAE in diffusers AutoencoderKL layout (e.g. AudioLDM2's or an image VAE)",
     lambda k: _any(k, "encoder.down_blocks.0.resnets.0.") and _any(k, "quant_conv"),
     "this is not a transformer; JoVA's audio codec is MMAudio's VAE (jova_core.load_audio_codec)"),
    ("mmaudio-net", "the MMAudio flow network",
     lambda k: _any(k, "joint_blocks.", "audio_input_proj."),
     "JoVA generates audio with its own transformer; only MMAudio's VAE and vocoder are used"),
]


def identify(keys: list[str], metadata: dict[str, str] | None = None) -> FileKind:
    """Classify a checkpoint by its (tensor) key names and safetensors metadata."""
    metadata = metadata or {}
    if metadata.get("format") == "jova" and "jova_config" in metadata:
        return FileKind("jova", "a native JoVA checkpoint")
    keys = list(keys)
    bare = _strip(keys)
    if "scaled_fp8" in bare or _any(bare, ".scale_weight"):
        return FileKind("fp8-scaled", "a ComfyUI fp8_scaled checkpoint (weights with per-tensor scales)",
                        "use the fp16/bf16 (or plain fp8_e4m3fn) file of the same model")
    if is_javisdit(dict.fromkeys(keys)):
        return FileKind("javisdit", "a JavisDiT++ transformer")
    layout = wan_layout(dict.fromkeys(bare))
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
