"""umT5-XXL text hidden states exactly as Wan2.1 feeds them to its transformer.

Wan2.1's convention (wan/modules/t5.py T5EncoderModel; diffusers WanPipeline
_get_t5_prompt_embeds), which a fine-tuned Wan-based JoVA must keep seeing:

    prompt -> umT5 tokens + EOS, truncated to text_len (512) tokens
           -> umT5 encoder: last hidden state (after its final RMSNorm, no projection)
           -> the rows of the real tokens kept, the rest zero: [text_len, 4096]

The encoder runs on the real tokens only: with Wan's padding the pad tokens are masked
out of every attention, so the real tokens' states are the same, for far less work.

Weights, in the layouts people have (the model itself runs through Hugging Face
transformers' UMT5EncoderModel, an optional dependency imported only here):
  - a transformers folder: config.json + weights, tokenizer inside or in a sibling
    `tokenizer/` folder (diffusers' Wan2.1 pipelines), or a diffusers pipeline folder
    holding `text_encoder/` and `tokenizer/`;
  - one file with Hugging Face / ComfyUI key names (`encoder.block.N.layer...`):
    ComfyUI's umt5_xxl_fp16.safetensors and umt5_xxl_fp8_e4m3fn_scaled.safetensors,
    which carry their sentencepiece tokenizer as the uint8 tensor "spiece_model";
  - one file with Wan's own key names (`blocks.N.attn.q.weight`...): Wan2.1's
    models_t5_umt5-xxl-enc-bf16.pth, read with torch.load(weights_only=True); its
    tokenizer is the release's `google/umt5-xxl` folder next to it.

Tokens: a sentencepiece model (ComfyUI's "spiece_model", or spiece.model in a tokenizer
folder) is used directly, as ComfyUI's CLIPLoader does when the nodes encode a prompt;
a folder with only tokenizer.json goes through transformers' AutoTokenizer, as Wan2.1
does. No text cleaning beyond jova_core.text.format_prompt's whitespace collapsing
(ComfyUI applies none; Wan2.1 and diffusers also unescape HTML entities and run ftfy).
"""

from __future__ import annotations

import os
import re

import torch

from .base import TextEncoder

INSTALL_HINT = "pip install transformers sentencepiece"
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json")
# ComfyUI's scaled fp8: the real weight is the stored fp8 weight times this scale.
_SCALE_SUFFIXES = (".scale_weight", ".weight_scale")
_INPUT_SCALE_SUFFIXES = (".scale_input", ".input_scale")

# Wan's key names -> Hugging Face's (wan/modules/t5.py T5Encoder vs UMT5EncoderModel):
# Wan's FFN is fc2(fc1(x) * gelu(gate(x))), HF's wo(wi_1(x) * gelu(wi_0(x))).
_WAN_BLOCK_KEYS = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
_WAN_TOP_KEYS = {"token_embedding.weight": "shared.weight", "norm.weight": "encoder.final_layer_norm.weight"}
_WAN_BLOCK_RE = re.compile(r"blocks\.(\d+)\.(.+)")
_HF_BLOCK_RE = re.compile(r"encoder\.block\.(\d+)\.")


def _transformers():
    try:
        import transformers
    except ImportError as err:
        raise ImportError(f"the umT5 text encoder needs Hugging Face transformers: {INSTALL_HINT}") from err
    return transformers


def _has_tokenizer(folder: str) -> bool:
    return os.path.isdir(folder) and any(os.path.isfile(os.path.join(folder, n)) for n in TOKENIZER_FILES)


def wan_to_hf_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wan2.1's T5Encoder key names -> UMT5EncoderModel's; an unknown key is an error."""
    out = {}
    for key, tensor in state_dict.items():
        block = _WAN_BLOCK_RE.fullmatch(key)
        if key in _WAN_TOP_KEYS:
            out[_WAN_TOP_KEYS[key]] = tensor
        elif block and block.group(2) in _WAN_BLOCK_KEYS:
            out[f"encoder.block.{block.group(1)}.{_WAN_BLOCK_KEYS[block.group(2)]}"] = tensor
        else:
            raise ValueError(f"{key!r} is not a key of Wan2.1's umT5 encoder (wan/modules/t5.py T5Encoder)")
    return out


def _strip_to(state_dict: dict[str, torch.Tensor], marker: str) -> dict[str, torch.Tensor] | None:
    """The state dict without the prefix in front of `marker` (a key the bare layout has), or None."""
    prefix = next((k[: -len(marker)] for k in state_dict if k.endswith(marker)), None)
    if prefix is None:
        return None
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def dequantize_scaled_fp8(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's fp8_scaled files: weight = fp8 weight * its scale (float32 out); the
    input scales only serve fp8 matmuls and are dropped."""
    out = {}
    for key, tensor in state_dict.items():
        if key.endswith(_INPUT_SCALE_SUFFIXES) or key.endswith(_SCALE_SUFFIXES):
            continue
        stem = key[: -len(".weight")] if key.endswith(".weight") else None
        scale = next((state_dict[stem + s] for s in _SCALE_SUFFIXES if stem and stem + s in state_dict), None)
        if tensor.dtype in (torch.float8_e4m3fn, torch.float8_e5m2) or scale is not None:
            tensor = tensor.float() * (scale.float() if scale is not None else 1.0)
        out[key] = tensor
    return out


def hf_state_dict(raw: dict[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], bytes | None]:
    """(UMT5EncoderModel state dict without the tied embed_tokens copy, sentencepiece model
    bytes or None) from one file's tensors in the Hugging Face / ComfyUI layout or in Wan's."""
    raw = dict(raw)
    spiece = raw.pop("spiece_model", None)
    raw.pop("scaled_fp8", None)
    raw = dequantize_scaled_fp8(raw)
    state = _strip_to(raw, "encoder.final_layer_norm.weight")
    if state is None:
        wan = _strip_to(raw, "blocks.0.attn.q.weight")
        if wan is None:
            sample = ", ".join(sorted(raw)[:4])
            raise ValueError(
                f"{source} is not a umT5 encoder in a known layout (first keys: {sample}); JoVA reads "
                "transformers folders, ComfyUI's umt5_xxl_*.safetensors and Wan2.1's models_t5_umt5-xxl-enc-bf16.pth"
            )
        state = wan_to_hf_keys(wan)
    # Full T5 files also hold the decoder; only the encoder is needed.
    state = {k: v for k, v in state.items() if not k.startswith(("decoder.", "lm_head."))}
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    if "shared.weight" not in state:
        raise ValueError(f"{source} has no token embedding ('shared.weight'); is it a complete umT5 encoder?")
    state.pop("encoder.embed_tokens.weight", None)  # tied to shared.weight; set again once cast
    bias = "encoder.block.{}.layer.0.SelfAttention.relative_attention_bias.weight"
    if bias.format(0) in state and bias.format(1) not in state and "encoder.block.1.layer.0.layer_norm.weight" in state:
        raise ValueError(
            f"{source} is a T5 encoder (position bias in its first block only, e.g. t5xxl for Flux/SD3), "
            "not umT5-XXL; Wan2.1 and JoVA read umT5-XXL (umt5_xxl_fp16.safetensors)"
        )
    model_bytes = None if spiece is None else spiece.to(torch.uint8).numpy().tobytes()
    return state, model_bytes


def config_from_state_dict(state: dict[str, torch.Tensor]):
    """UMT5Config from the tensor shapes (umT5-XXL: vocab 256384, d_model 4096, 24 layers,
    64 heads of 64, d_ff 10240, 32 relative-position buckets up to distance 128)."""
    transformers = _transformers()
    vocab, d_model = state["shared.weight"].shape
    layers = 1 + max(int(m.group(1)) for m in map(_HF_BLOCK_RE.match, state) if m)
    buckets, heads = state["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape
    inner = state["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
    d_ff = state["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
    return transformers.UMT5Config(
        vocab_size=vocab, d_model=d_model, d_kv=inner // heads, num_heads=heads, num_layers=layers, d_ff=d_ff,
        relative_attention_num_buckets=buckets, relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.0,
    )


class UMT5TextEncoder(TextEncoder):
    """Prompts -> [B, text_len, d_model] float32 umT5 hidden states, zero past the real tokens.

    path: a transformers folder, a diffusers pipeline folder, or one weight file (see the
    module docstring). Nothing is read until the first prompt, so a training run whose
    clips are all cached never loads the 11 GB encoder. Runs on CUDA in bfloat16 when
    there is a GPU (as Wan2.1 does), else on the CPU in float32.
    """

    def __init__(self, path: str, text_len: int = 512, text_dim: int | None = None, device=None, dtype=None):
        if not os.path.exists(path):
            raise FileNotFoundError(f"no umT5 text encoder at {path!r}; give a transformers folder or a umT5 weight file")
        self.path, self.text_len, self.text_dim = path, text_len, text_dim
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype if dtype is not None else (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self.weights, self.tokenizer_dirs = self._locate(path)
        self._model = None
        self._tokenize = None

    # -- where things are ---------------------------------------------------------------

    @staticmethod
    def _locate(path: str) -> tuple[str, list[str]]:
        """(weights: a folder with config.json or one file, folders to look for a tokenizer in)."""
        if os.path.isfile(path):
            folder = os.path.dirname(os.path.abspath(path))
            # Wan2.1 releases keep the tokenizer in google/umt5-xxl next to the .pth.
            return path, [os.path.join(folder, "google", "umt5-xxl"), os.path.join(folder, "tokenizer"), folder]
        if os.path.isfile(os.path.join(path, "text_encoder", "config.json")):  # a diffusers pipeline
            return os.path.join(path, "text_encoder"), [os.path.join(path, "tokenizer")]
        if os.path.isfile(os.path.join(path, "config.json")):
            return path, [path, os.path.join(os.path.dirname(os.path.abspath(path)), "tokenizer")]
        raise ValueError(
            f"{path} is a folder without config.json (a transformers model) or text_encoder/ (a diffusers "
            "pipeline); give such a folder or one umT5 weight file"
        )

    def _weight_files(self) -> list[str]:
        if os.path.isfile(self.weights):
            return [self.weights]
        return sorted(os.path.join(self.weights, n) for n in os.listdir(self.weights)
                      if n.endswith((".safetensors", ".bin", ".json")))

    @property
    def fingerprint(self) -> str:
        """Changes with the weight files (names and sizes), text_len and the compute dtype."""
        files = ",".join(f"{os.path.basename(f)}:{os.path.getsize(f)}" for f in self._weight_files())
        return f"umt5:{files}:{self.text_len}:{str(self.dtype).removeprefix('torch.')}"

    # -- loading ------------------------------------------------------------------------

    def _load(self) -> None:
        transformers = _transformers()
        model_bytes = None
        if os.path.isdir(self.weights):
            model, info = transformers.UMT5EncoderModel.from_pretrained(
                self.weights, dtype=self.dtype, output_loading_info=True
            )
            # transformers fills missing weights with random ones and only warns.
            if model.config.model_type != "umt5" or info["missing_keys"]:
                raise ValueError(
                    f"{self.weights} is not a complete umT5 encoder (model_type {model.config.model_type!r}, "
                    f"missing {sorted(info['missing_keys'])[:5]}); Wan2.1 and JoVA read umT5-XXL"
                )
        else:
            from ..weights import build_exactly, read_state_dict

            state, model_bytes = hf_state_dict(read_state_dict(self.weights), self.weights)
            for key in list(state):  # cast one tensor at a time: the XXL encoder is 11 GB in 16 bits
                state[key] = state[key].to(self.dtype)
            state["encoder.embed_tokens.weight"] = state["shared.weight"]  # tied, as in UMT5EncoderModel
            config = config_from_state_dict(state)
            model = build_exactly(lambda: transformers.UMT5EncoderModel(config), state, f"{self.weights} (as a umT5 encoder)")
        width = model.config.d_model
        if self.text_dim is not None and width != self.text_dim:
            raise ValueError(
                f"the umT5 encoder at {self.path} gives {width}-wide hidden states but the model reads "
                f"text_dim {self.text_dim}; use the text encoder the model was made for (Wan2.1: umT5-XXL, 4096)"
            )
        self._model = model.to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        self._tokenize = self._tokenizer(model_bytes)

    def _tokenizer(self, model_bytes: bytes | None):
        """tokenize(text, max_tokens) -> ids with EOS last, truncated like Wan's tokenizer.

        A sentencepiece model (inside ComfyUI's files, or spiece.model in a tokenizer
        folder) is used directly, as ComfyUI's CLIPLoader uses it at inference; a folder
        with only tokenizer.json goes through transformers' AutoTokenizer, as Wan2.1 does.
        """
        folder = None
        if model_bytes is None:
            folder = next((d for d in self.tokenizer_dirs if _has_tokenizer(d)), None)
            if folder is None:
                raise FileNotFoundError(
                    f"no umT5 tokenizer found for {self.weights}: looked in {self.tokenizer_dirs}. Put the "
                    "google/umt5-xxl tokenizer files (spiece.model or tokenizer.json) in one of them"
                )
            if os.path.isfile(os.path.join(folder, "spiece.model")):
                with open(os.path.join(folder, "spiece.model"), "rb") as f:
                    model_bytes = f.read()
        if model_bytes is not None:
            try:
                import sentencepiece
            except ImportError as err:
                raise ImportError(f"reading the umT5 tokenizer needs sentencepiece: {INSTALL_HINT}") from err
            processor = sentencepiece.SentencePieceProcessor(model_proto=model_bytes)
            return lambda text, max_tokens: processor.encode(text)[: max_tokens - 1] + [processor.eos_id()]
        tokenizer = _transformers().AutoTokenizer.from_pretrained(folder)
        return lambda text, max_tokens: tokenizer(
            text, truncation=True, max_length=max_tokens, add_special_tokens=True
        )["input_ids"]

    # -- encoding -----------------------------------------------------------------------

    def tokenize(self, prompt: str) -> list[int]:
        """The token ids Wan2.1 feeds umT5 for `prompt` (EOS last, at most text_len)."""
        if self._model is None:
            self._load()
        return list(self._tokenize(prompt, self.text_len))

    @torch.no_grad()
    def encode_one(self, prompt: str) -> torch.Tensor:
        """One prompt -> [text_len, d_model] float32 on the CPU."""
        ids = self.tokenize(prompt)
        hidden = self._model(input_ids=torch.tensor([ids], device=self.device)).last_hidden_state[0].float()
        if not torch.isfinite(hidden).all():
            raise ValueError(f"umT5 gave non-finite hidden states for {prompt[:60]!r}; run it in bfloat16 or float32")
        out = torch.zeros(self.text_len, hidden.shape[-1])
        out[: len(ids)] = hidden.cpu()
        return out
