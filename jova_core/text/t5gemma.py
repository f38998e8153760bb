"""T5Gemma encoder hidden states exactly as daVinci-MagiHuman feeds them to its DiT
(reference magihuman.md "Codecs": inference/model/t5_gemma/t5_gemma_model.py, prompt_process.py).

    prompt -> the tokenizer's default call (its own special tokens, no truncation)
           -> T5Gemma encoder (transformers T5GemmaEncoderModel, is_encoder_decoder=False),
              last_hidden_state over ALL tokens -> float16 -> float32
           -> zero-padded or trimmed to text_len (640) rows: [640, 3584] for t5gemma-9b-9b-ul2

The encoder sees the whole prompt even past 640 tokens (trimming comes after encoding).
MagiHuman then keeps only the first min(tokens, 640) rows (no pad tokens reach the DiT):
`encode_with_length` returns that length.

Weights: the Hugging Face folder users download (`google/t5gemma-9b-9b-ul2`: config.json,
tokenizer files, safetensors shards of the encoder-decoder; only the encoder is read),
loaded offline. transformers is an optional dependency imported only here.
"""

from __future__ import annotations

import os

import torch

from .base import TextEncoder

INSTALL_HINT = "pip install transformers sentencepiece"
TEXT_LEN = 640  # MagiHuman's target_length
TEXT_DIM = 3584  # t5gemma-9b-9b-ul2's encoder width


def _transformers():
    try:
        import transformers
    except ImportError as err:
        raise ImportError(f"the T5Gemma text encoder needs Hugging Face transformers: {INSTALL_HINT}") from err
    if getattr(transformers, "T5GemmaEncoderModel", None) is None:
        # ComfyUI installs may hold a transformers older than T5Gemma.
        raise ImportError(
            f"transformers {transformers.__version__} has no T5Gemma encoder: pip install -U transformers"
        )
    return transformers


class T5GemmaTextEncoder(TextEncoder):
    """Prompts -> [B, text_len, d_model] float32 T5Gemma encoder states, zero past the real tokens.

    path: the downloaded model folder (config.json + weights + tokenizer). Nothing is read
    until the first prompt. Runs on CUDA in bfloat16 when there is a GPU (as MagiHuman
    does), else on the CPU in float32.
    """

    prompt_format = "plain"  # daVinci-MagiHuman feeds it plain text, no JoVA section tags

    def __init__(self, path: str, text_len: int = TEXT_LEN, text_dim: int | None = TEXT_DIM, device=None, dtype=None):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(
                f"no T5Gemma model folder at {path!r} (needs config.json): give the downloaded "
                "google/t5gemma-9b-9b-ul2 folder (config.json, *.safetensors, tokenizer files)"
            )
        self.path, self.text_len, self.text_dim = path, text_len, text_dim
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype if dtype is not None else (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        self._model = None
        self._tokenizer = None

    @property
    def fingerprint(self) -> str:
        """Changes with the weight files (names and sizes), text_len and the compute dtype."""
        files = sorted(n for n in os.listdir(self.path) if n.endswith((".safetensors", ".json")))
        sizes = ",".join(f"{n}:{os.path.getsize(os.path.join(self.path, n))}" for n in files)
        return f"t5gemma:{sizes}:{self.text_len}:{str(self.dtype).removeprefix('torch.')}"

    @property
    def model(self):
        """The encoder module (loaded on first use)."""
        if self._model is None:
            self.load()
        return self._model

    def load(self) -> None:
        """Read config, weights (encoder only) and tokenizer onto `device`; checked, offline."""
        transformers = _transformers()
        config = transformers.AutoConfig.from_pretrained(self.path, local_files_only=True)
        if config.model_type != "t5gemma":
            raise ValueError(
                f"{self.path} holds a {config.model_type!r} model, not T5Gemma; MagiHuman reads google/t5gemma-9b-9b-ul2"
            )
        model, info = transformers.T5GemmaEncoderModel.from_pretrained(
            self.path, is_encoder_decoder=False, dtype=self.dtype, local_files_only=True, output_loading_info=True
        )
        # transformers fills missing weights with random ones and only warns.
        if info["missing_keys"]:
            raise ValueError(
                f"{self.path} is not a complete T5Gemma encoder (missing {sorted(info['missing_keys'])[:5]}); "
                "is the download complete?"
            )
        width = model.config.encoder.hidden_size
        if self.text_dim is not None and width != self.text_dim:
            raise ValueError(
                f"the T5Gemma encoder at {self.path} gives {width}-wide hidden states but the model reads "
                f"text_dim {self.text_dim}; use the text encoder the model was made for (MagiHuman: "
                f"t5gemma-9b-9b-ul2, {TEXT_DIM})"
            )
        self._model = model.to(self.device).eval().requires_grad_(False)
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)

    def tokenize(self, prompt: str) -> list[int]:
        """The token ids MagiHuman feeds T5Gemma for `prompt` (the tokenizer's default call)."""
        if self._model is None:
            self.load()
        return list(self._tokenizer([prompt])["input_ids"][0])

    @torch.no_grad()
    def encode_with_length(self, prompt: str) -> tuple[torch.Tensor, int]:
        """One prompt -> ([text_len, d_model] float32 on the CPU, rows holding real tokens)."""
        ids = self.tokenize(prompt)
        hidden = self.model(input_ids=torch.tensor([ids], device=self.device)).last_hidden_state[0]
        hidden = hidden.half().float()  # MagiHuman's float16 round trip
        if not torch.isfinite(hidden).all():
            raise ValueError(f"T5Gemma gave non-finite hidden states for {prompt[:60]!r}; run it in bfloat16 or float32")
        length = min(len(ids), self.text_len)
        out = torch.zeros(self.text_len, hidden.shape[-1])
        out[:length] = hidden[:length].cpu()
        return out, length

    def encode_one(self, prompt: str) -> torch.Tensor:
        """One prompt -> [text_len, d_model] float32 on the CPU."""
        return self.encode_with_length(prompt)[0]
