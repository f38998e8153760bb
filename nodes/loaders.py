"""Loader nodes: the JoVA transformer, the audio codec, a pack video codec, the demo text encoder.

The CPU demo is one more choice in each list ("demo ..."), so the demo workflow is the
same graph as the real one with other files picked.
"""

from __future__ import annotations

import comfy.model_management
import comfy.model_patcher
import comfy.utils
import torch
from comfy_api.latest import io
from diffusers.hooks import apply_layerwise_casting
from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN

from ..jova_core.checkpoint import generation_defaults, load_transformer
from ..jova_core.codecs import load_audio_codec, load_video_codec
from ..jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from ..jova_core.demo import load_demo_model, load_demo_settings, reference_frame
from ..jova_core.model.attention import BACKENDS
from ..jova_core.offload import module_bytes
from ..jova_core.text.demo import DemoTextEncoder
from ..jova_core.text.t5gemma import T5GemmaTextEncoder
from ..jova_core.weights import whole_checkpoint
from .model_handle import OFFLOAD_POLICIES, JoVAModelHandle
from .paths import (
    AUDIO_CODEC_FOLDERS,
    MODEL_FOLDERS,
    TEXT_ENCODER_FOLDERS,
    VIDEO_CODEC_FOLDERS,
    WEIGHT_EXTENSIONS,
    folder_names,
    list_files,
    list_model_folders,
    resolve,
    resolve_model_folder,
)
from .types import CATEGORY, JoVAAudioCodec, JoVAModel, JoVATextEncoder, JoVAVideoCodec

DEMO_MODEL = "demo: tiny CPU model (built in)"
# Transformer files, and the index of a sharded release (daVinci-MagiHuman's base/, distill/).
MODEL_EXTENSIONS = WEIGHT_EXTENSIONS + (".index.json",)
DEMO_CODEC = "demo (built in, no weights)"
NO_VOCODER = "(none: demo or Stable Audio Open)"

WEIGHT_DTYPES = {
    "default": None,  # bf16 on a GPU that supports it, else fp32
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp32": torch.float32,
    # Linear/conv weights stored in fp8 (about half of bf16's memory), computed in bf16.
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}
FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


def default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def store_in_fp8(transformer: torch.nn.Module, storage: torch.dtype) -> None:
    """Keep linear/conv weights in fp8 and upcast each layer to bf16 just for its forward
    (diffusers' layerwise casting). Norms, modulation tables and patch embeddings stay as
    loaded, and so do the modules the hosted model keeps in fp32 (MagiHuman: all but the
    block linears)."""
    skip = DEFAULT_SKIP_MODULES_PATTERN + transformer.hosting.fp32_modules
    apply_layerwise_casting(transformer, storage_dtype=storage, compute_dtype=torch.bfloat16, skip_modules_pattern=skip)


def interruptible_progress(total_hint: int = 0):
    """A loader progress callback: ComfyUI's progress bar, and the Cancel button honoured."""
    bar = comfy.utils.ProgressBar(max(total_hint, 1))

    def progress(done: int, total: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total)

    return progress


class JoVAModelLoader(io.ComfyNode):
    # The model folders each file list reads (for tests and workflows' properties.models).
    FILE_FOLDERS = {"model_name": MODEL_FOLDERS}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAModelLoader",
            display_name="JoVA Model Loader",
            category=CATEGORY,
            description=(
                "Loads a JoVA transformer from models/jova or models/diffusion_models. Native JoVA files "
                "load as they are; Wan2.1 T2V and JavisDiT++ transformers are converted on load; a "
                "daVinci-MagiHuman base/ or distill/ DiT (pick any of its shards, or a merged file) runs as it is. "
                "Any other file stops with what it looks like."
            ),
            inputs=[
                io.Combo.Input("model_name", options=[DEMO_MODEL] + list_files(MODEL_FOLDERS, MODEL_EXTENSIONS),
                               tooltip=f"A transformer file in {folder_names(MODEL_FOLDERS)}: native JoVA, or Wan2.1 "
                                       "T2V / JavisDiT++ (converted on load). The demo needs no file."),
                io.Combo.Input("weight_dtype", options=list(WEIGHT_DTYPES), default="default",
                               tooltip="fp8 keeps weights in 8 bits and computes in bf16 (half of bf16's memory)."),
                io.Combo.Input("attention", options=list(BACKENDS), default=BACKENDS[0],
                               tooltip="sdpa works everywhere; sage/flash need their packages installed."),
                io.Combo.Input("offload", options=list(OFFLOAD_POLICIES), default=OFFLOAD_POLICIES[0],
                               tooltip="'block swap' keeps only blocks_on_gpu blocks on the GPU while sampling."),
                io.Int.Input("blocks_on_gpu", default=20, min=0, max=128,
                             tooltip="Blocks kept on the GPU with 'block swap' (the rest stream in per step)."),
                io.Boolean.Input("compile_blocks", default=False, optional=True,
                                 tooltip="torch.compile each transformer block (compiled once, reused by every block "
                                         "of its kind). The first step waits for the compiler; later steps are faster."),
            ],
            outputs=[JoVAModel.Output("model", tooltip="For JoVA Empty Latent and JoVA Sampler.")],
        )

    @classmethod
    def execute(cls, model_name: str, weight_dtype: str, attention: str, offload: str,
                blocks_on_gpu: int, compile_blocks: bool = False) -> io.NodeOutput:
        if weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"weight_dtype must be one of {list(WEIGHT_DTYPES)}, got {weight_dtype!r}")
        device = comfy.model_management.get_torch_device()
        dtype = WEIGHT_DTYPES[weight_dtype] or default_dtype(device)
        load_dtype = torch.bfloat16 if dtype in FP8 else dtype
        offload_device = comfy.model_management.unet_offload_device()
        if model_name == DEMO_MODEL:
            source = "the built-in CPU demo model"
            transformer = load_demo_model().to(offload_device, load_dtype)
            transformer.set_attention(attention)
            defaults = None
        else:
            source = whole_checkpoint(resolve(MODEL_FOLDERS, model_name))  # a shard means its whole index
            transformer = load_transformer(source, dtype=load_dtype, device=offload_device, attention=attention,
                                           progress=interruptible_progress())
            defaults = generation_defaults(source)
        if dtype in FP8:
            store_in_fp8(transformer, dtype)
        if compile_blocks:
            transformer.compile_blocks()
        return io.NodeOutput(JoVAModelHandle(transformer, source, offload, blocks_on_gpu, defaults=defaults))


class JoVAAudioCodecLoader(io.ComfyNode):
    FILE_FOLDERS = {"vae_name": AUDIO_CODEC_FOLDERS, "vocoder_name": AUDIO_CODEC_FOLDERS}

    @classmethod
    def define_schema(cls) -> io.Schema:
        files = list_files(AUDIO_CODEC_FOLDERS)
        return io.Schema(
            node_id="JoVAAudioCodecLoader",
            display_name="JoVA Audio Codec Loader",
            category=CATEGORY,
            description=(
                "Audio VAE (+ vocoder) from models/jova_audio or models/vae, recognised from the files: "
                "MMAudio's v1-16.pth with its best_netG.pt (16 kHz) or v1-44.pth with NVIDIA's "
                "bigvgan_v2_44khz_128band_512x (44.1 kHz); for JavisDiT++, AudioLDM2's "
                "vae/diffusion_pytorch_model.safetensors with its vocoder/model.safetensors (cvssp/audioldm2); "
                "or Stable Audio Open 1.0's VAE alone (MagiHuman's stereo codec: model.safetensors or "
                "vae/diffusion_pytorch_model.safetensors, no vocoder). "
                "'demo' needs no files."
            ),
            inputs=[
                io.Combo.Input("vae_name", options=[DEMO_CODEC] + files,
                               tooltip=f"Audio VAE in {folder_names(AUDIO_CODEC_FOLDERS)}: MMAudio's v1-16.pth (16 kHz) "
                                       "or v1-44.pth (44.1 kHz), or Stable Audio Open's VAE (MagiHuman, stereo); "
                                       "'demo' needs no file."),
                io.Combo.Input("vocoder_name", options=[NO_VOCODER] + files,
                               tooltip=f"Its BigVGAN vocoder in {folder_names(AUDIO_CODEC_FOLDERS)}: best_netG.pt for "
                                       "v1-16.pth, NVIDIA's bigvgan_v2_44khz_128band_512x generator for v1-44.pth; "
                                       "none for the demo and Stable Audio Open."),
            ],
            outputs=[JoVAAudioCodec.Output("audio_codec", tooltip="For JoVA Sampler (a2v) and JoVA Decode.")],
        )

    @classmethod
    def execute(cls, vae_name: str, vocoder_name: str) -> io.NodeOutput:
        if vae_name == DEMO_CODEC:
            return io.NodeOutput(DemoAudioCodec())
        vocoder = None if vocoder_name == NO_VOCODER else resolve(AUDIO_CODEC_FOLDERS, vocoder_name)
        codec = load_audio_codec(resolve(AUDIO_CODEC_FOLDERS, vae_name), vocoder,
                                 device=comfy.model_management.unet_offload_device())
        return io.NodeOutput(codec)


class JoVAVideoCodecLoader(io.ComfyNode):
    FILE_FOLDERS = {"codec_name": VIDEO_CODEC_FOLDERS}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAVideoCodecLoader",
            display_name="JoVA Video Codec Loader",
            category=CATEGORY,
            description=(
                "A pack video codec: the weight-free demo codec, or a Wan2.1 / Wan2.2 VAE file through diffusers "
                "(told apart by contents; Wan2.2 is MagiHuman's). With ComfyUI's own VAELoader "
                "(wan_2.1_vae / wan2.2_vae .safetensors) you do not need this node."
            ),
            inputs=[io.Combo.Input("codec_name", options=[DEMO_CODEC] + list_files(VIDEO_CODEC_FOLDERS),
                                   tooltip=f"A Wan VAE file in {folder_names(VIDEO_CODEC_FOLDERS)} (Wan2.1_VAE.pth, "
                                           "wan_2.1_vae.safetensors or Wan2.2_VAE.pth); 'demo' needs no file.")],
            outputs=[JoVAVideoCodec.Output("video_codec", tooltip="For JoVA Sampler and JoVA Decode.")],
        )

    @classmethod
    def execute(cls, codec_name: str) -> io.NodeOutput:
        if codec_name == DEMO_CODEC:
            return io.NodeOutput(DemoVideoCodec())
        path = resolve(VIDEO_CODEC_FOLDERS, codec_name)
        return io.NodeOutput(load_video_codec(path, device=comfy.model_management.unet_offload_device()))


class JoVATextEncoderLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVATextEncoderLoader",
            display_name="JoVA Demo Text Encoder",
            category=CATEGORY,
            description=(
                "The CPU demo's fixed hash text encoder, sized for the connected model. Real models read "
                "umT5-XXL: use the core CLIPLoader (type 'wan') instead."
            ),
            inputs=[
                JoVAModel.Input("model", tooltip="The demo encoder is sized for this model's text width and length."),
                io.Combo.Input("encoder", options=[DemoTextEncoder.name], tooltip="The demo's fixed hash encoder."),
            ],
            outputs=[JoVATextEncoder.Output("text_encoder", tooltip="For JoVA Text Encode's text_encoder.")],
        )

    @classmethod
    def execute(cls, model, encoder: str) -> io.NodeOutput:
        hosting = model.hosting
        return io.NodeOutput(DemoTextEncoder(hosting.text_dim, hosting.text_len))


class ComfyManagedT5Gemma(T5GemmaTextEncoder):
    """MagiHuman's T5Gemma encoder under ComfyUI's model management: loaded on the offload
    device, moved to the GPU for encoding, offloaded by ComfyUI when others need the memory."""

    def __init__(self, path: str):
        mm = comfy.model_management
        self.load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
        dtype = torch.bfloat16 if torch.device(self.load_device).type == "cuda" else torch.float32
        # Any width: the sampler checks the features against the model it runs.
        super().__init__(path, text_dim=None, device=offload_device, dtype=dtype)
        self.patcher = None

    def load(self) -> None:
        super().load()
        # ModelPatcher assigns .device on what it manages; transformers models make .device read-only.
        holder = torch.nn.Module()
        holder.encoder = self._model
        self.patcher = comfy.model_patcher.ModelPatcher(
            holder, load_device=self.load_device, offload_device=self.device, size=module_bytes(self._model)
        )

    def encode_with_length(self, prompt: str):
        if self.patcher is None:
            self.load()
        comfy.model_management.load_models_gpu([self.patcher])
        self.device = torch.device(self.load_device)
        return super().encode_with_length(prompt)


class JoVAT5GemmaLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAT5GemmaLoader",
            display_name="JoVA T5Gemma Text Encoder",
            category=CATEGORY,
            description=(
                "daVinci-MagiHuman's text encoder: the google/t5gemma-9b-9b-ul2 folder as downloaded (config.json, "
                "safetensors shards, tokenizer files) in models/text_encoders. Only its encoder is read; it runs "
                "on the GPU while encoding and ComfyUI offloads it afterwards when memory is needed."
            ),
            inputs=[io.Combo.Input("folder", options=list_model_folders(TEXT_ENCODER_FOLDERS),
                                   tooltip=f"A T5Gemma model folder in {folder_names(TEXT_ENCODER_FOLDERS)}.")],
            outputs=[JoVATextEncoder.Output("text_encoder", tooltip="For JoVA Text Encode's text_encoder.")],
        )

    @classmethod
    def execute(cls, folder: str) -> io.NodeOutput:
        return io.NodeOutput(ComfyManagedT5Gemma(resolve_model_folder(TEXT_ENCODER_FOLDERS, folder)))


class JoVADemoReferenceImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVADemoReferenceImage",
            display_name="JoVA Demo Reference Image",
            category=CATEGORY,
            description="The first frame the CPU demo model animates (image -> video + audio): its synthetic astronaut.",
            inputs=[],
            outputs=[io.Image.Output("image", tooltip="For JoVA Sampler's reference_image.")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(reference_frame(load_demo_settings())[None].float().clamp(0, 1))
