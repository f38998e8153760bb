"""Caption dropout trains on exactly what inference uses as the empty (negative) prompt:
the text encoder's encoding of "" cached once per cache, not zeros (except where the
encoder's "" is zeros, as the demo encoder's is)."""

from __future__ import annotations

import dataclasses
import json
import os
import zlib

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from jova_core.text.demo import DemoTextEncoder
from jova_core.train import encode
from jova_core.train.config import TrainConfig
from jova_core.train.data import CachedClips, cache_empty_text, empty_text_path, write_index
from jova_core.train.loss import draw_noise, flow_losses
from jova_core.train.trainer import build_model, sample_seed, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 16
TINY = {"dim": 16, "num_heads": 2, "ffn_dim": 32, "freq_dim": 16, "text_dim": WIDTH, "text_len": 64}
SYNTHETIC = {"clips": 2, "seconds": 0.21, "fps": 24.0, "size": 64}


class UMT5LikeEncoder:
    """Encodes as umT5 does for Wan: one state per token plus an end-of-sequence token,
    zeros after it, so "" gives one non-zero (EOS) row. Counts the prompts it encodes."""

    fingerprint = "umt5-like-v1"

    def __init__(self, text_dim: int, text_len: int):
        self.text_dim, self.text_len, self.prompts = text_dim, text_len, []

    def _state(self, token: str) -> torch.Tensor:
        return torch.randn(self.text_dim, generator=torch.Generator().manual_seed(zlib.crc32(token.encode())))

    def __call__(self, prompt: str) -> torch.Tensor:
        self.prompts.append(prompt)
        tokens = prompt.split()[: self.text_len - 1] + ["</s>"]
        out = torch.zeros(1, self.text_len, self.text_dim)
        out[0, : len(tokens)] = torch.stack([self._state(t) for t in tokens])
        return out


@pytest.fixture(scope="module")
def umt5_like_cache(tmp_path_factory):
    """Two synthetic clips cached with the umT5-like text encoder; (recipe, dataset, encoder)."""
    root = tmp_path_factory.mktemp("dropout")
    text_encoder = UMT5LikeEncoder(WIDTH, TINY["text_len"])
    cfg = TrainConfig(synthetic=SYNTHETIC, cache_dir=str(root / "cache"), output_dir=str(root / "out"), preset="tiny",
                      model_overrides=TINY, caption_dropout=0.5, steps=1, batch_size=2, save_every=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(encode, "build_text_encoder", lambda cfg, text_dim, text_len: text_encoder)
        dataset = encode.cached_dataset(cfg, show_progress=False)
        # Everything is cached now: a second pass encodes nothing, not even "".
        calls = len(text_encoder.prompts)
        again = encode.cached_dataset(cfg, show_progress=False)
        assert len(text_encoder.prompts) == calls and torch.equal(again.empty_text, dataset.empty_text)
    return cfg, dataset, text_encoder


def model_inputs(model) -> list[dict]:
    """The keyword arguments of every forward call of `model` (appended as they happen)."""
    calls = []
    model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
    return calls


def test_dropped_samples_train_on_the_cached_empty_prompt_not_zeros(umt5_like_cache):
    cfg, dataset, text_encoder = umt5_like_cache
    empty = text_encoder("")[0]
    assert empty[0].abs().sum() > 0 and empty[1:].abs().sum() == 0  # the EOS state, then padding
    assert torch.equal(dataset.empty_text, empty)
    # Cached once, next to the clips and stamped with the clips' encoders.
    path = empty_text_path(cfg.cache_dir)
    with safe_open(path, framework="pt") as f, safe_open(dataset.paths[0], framework="pt") as clip:
        assert f.metadata()["encoder"] == clip.metadata()["encoder"]
    assert torch.equal(load_file(path)["text"], empty)

    batch = dataset.batch([0, 1])
    assert torch.equal(batch["empty_text"], empty) and not torch.equal(batch["text"][0], empty)
    model = build_model(cfg)
    for ends in (model.video, model.audio):  # fresh heads are zero: make the output depend on the text
        torch.nn.init.normal_(ends.head.head.weight, std=0.1, generator=torch.Generator().manual_seed(0))
    seen = model_inputs(model)
    noise = draw_noise(batch, [11, 12], cfg.shift)
    dropped = dataclasses.replace(noise, drop_text=torch.tensor([True, False]))
    with torch.no_grad():
        loss = flow_losses(model, batch, dropped, mouth_weight=5.0)
        # Oracle: the first sample's own text swapped for the encoded "" by hand, nothing dropped.
        by_hand = {**batch, "text": torch.stack([empty, batch["text"][1]])}
        expected = flow_losses(model, by_hand, noise, mouth_weight=5.0)
        zeros = flow_losses(model, {**batch, "text": torch.stack([torch.zeros_like(empty), batch["text"][1]])},
                            noise, mouth_weight=5.0)
    assert torch.equal(seen[0]["text"][0], empty) and torch.equal(seen[0]["text"][1], batch["text"][1])
    assert all(torch.equal(a, b) for a, b in zip(loss, expected))
    assert not any(torch.equal(a, b) for a, b in zip(loss, zeros))


def test_training_from_the_cache_index_reads_the_empty_prompt_only_when_dropping(umt5_like_cache, tmp_path):
    cfg, dataset, _ = umt5_like_cache
    from_index = dataclasses.replace(cfg, synthetic={})
    assert torch.equal(encode.cached_dataset(from_index, show_progress=False).empty_text, dataset.empty_text)
    assert encode.cached_dataset(dataclasses.replace(from_index, caption_dropout=0.0), show_progress=False).empty_text is None
    # An empty prompt from other encoders than the clips' is refused, not trained on.
    stale = str(tmp_path / "stale.safetensors")
    save_file({"text": dataset.empty_text}, stale, metadata={"encoder": "some other encoder"})
    with pytest.raises(ValueError, match="cache the clips again"):
        CachedClips(dataset.paths, stale)


def test_empty_prompt_cache_is_redone_only_when_its_encoder_or_source_changes(tmp_path):
    made = []

    def make():
        made.append(1)
        return torch.full((4, 8), float(len(made)))

    cache = str(tmp_path / "cache")
    path = cache_empty_text(cache, "encoder-a", make)
    cache_empty_text(cache, "encoder-a", make)
    assert len(made) == 1
    cache_empty_text(cache, "encoder-b", make)
    assert len(made) == 2 and load_file(path)["text"][0, 0] == 2.0
    with open(path, "r+b") as f:  # a killed run's truncated file
        f.truncate(10)
    cache_empty_text(cache, "encoder-b", make)
    assert len(made) == 3
    source = tmp_path / "empty.safetensors"
    save_file({"text": torch.zeros(1, 8)}, str(source))
    cache_empty_text(cache, "encoder-b", make, str(source))
    cache_empty_text(cache, "encoder-b", make, str(source))
    assert len(made) == 4
    os.utime(source, ns=(0, 10**9))  # an edited precomputed file
    cache_empty_text(cache, "encoder-b", make, str(source))
    assert len(made) == 5


def test_demo_encoders_empty_prompt_is_zeros_so_dropout_is_as_before():
    # The shipped demo recipe's encoder and sizes.
    cfg = TrainConfig.from_file(os.path.join(REPO, "jova_core", "assets", "demo_recipe.json"))
    sizes = cfg.model_overrides["text_dim"], cfg.model_overrides["text_len"]
    demo = encode.build_text_encoder(cfg, *sizes)
    assert isinstance(demo, DemoTextEncoder) and cfg.caption_dropout > 0
    empty = demo("")[0]
    assert empty.shape == (sizes[1], sizes[0]) and torch.equal(empty, torch.zeros_like(empty))
    # So dropping a caption feeds the model the zeros it was fed before the empty prompt was cached.
    small = TrainConfig(preset="tiny", model_overrides=TINY)
    demo = encode.build_text_encoder(small, WIDTH, TINY["text_len"])
    g = torch.Generator().manual_seed(0)
    batch = {"video": torch.randn(2, 16, 2, 4, 4, generator=g), "audio": torch.randn(2, 20, 6, generator=g),
             "text": demo(["<Video Caption>: a face <Audio Caption>: speech", "<Video Caption>: a dog"]),
             "fps": torch.tensor([8.0, 8.0]), "empty_text": demo("")[0]}
    model = build_model(small)
    seen = model_inputs(model)
    noise = dataclasses.replace(draw_noise(batch, [1, 2], 3.0), drop_text=torch.tensor([False, True]))
    with torch.no_grad():
        flow_losses(model, batch, noise, mouth_weight=0.0)
    assert torch.equal(seen[0]["text"], torch.stack([batch["text"][0], torch.zeros_like(batch["text"][1])]))


def test_precomputed_recipes_name_the_empty_prompts_file(tmp_path):
    with pytest.raises(ValueError, match="needs empty_text_embedding"):
        TrainConfig(text_encoder="precomputed", caption_dropout=0.1)
    with pytest.raises(ValueError, match="encodes the empty prompt itself"):
        TrainConfig(text_encoder="demo", empty_text_embedding="empty.safetensors")
    TrainConfig(text_encoder="precomputed")  # without dropout it is not needed
    (tmp_path / "recipe.json").write_text(json.dumps(
        {"text_encoder": "precomputed", "caption_dropout": 0.1, "empty_text_embedding": "text/empty.safetensors"}))
    cfg = TrainConfig.from_file(str(tmp_path / "recipe.json"))
    assert cfg.empty_text_embedding == str(tmp_path / "text" / "empty.safetensors")

    data = tmp_path / "clips"
    data.mkdir()
    (data / "captions.json").write_text(json.dumps([{"file": "c0.mp4", "video_caption": "a face",
                                                     "text_embedding": "c0.text.safetensors"}]))
    recipe = dict(data_dir=str(data), cache_dir=str(tmp_path / "cache"), preset="tiny", model_overrides=TINY,
                  text_encoder="precomputed", caption_dropout=0.1, empty_text_embedding=cfg.empty_text_embedding)
    with pytest.raises(FileNotFoundError, match=r"empty_text_embedding .*empty.safetensors does not exist"):
        encode.cached_dataset(TrainConfig(**recipe), show_progress=False)
    # The file is checked like the clips' own: the model's width.
    os.makedirs(tmp_path / "text")
    save_file({"text": torch.randn(1, WIDTH + 1)}, cfg.empty_text_embedding)
    with pytest.raises(ValueError, match=rf"empty.safetensors: text hidden states .*\[L, {WIDTH}\]"):
        encode.cached_dataset(TrainConfig(**recipe), show_progress=False)


def test_precomputed_empty_prompt_is_cached_zero_padded_and_trained_on(tmp_path):
    from jova_core.io import write_mp4
    from jova_core.train.synthetic import make_talking_clip

    data = tmp_path / "clips"
    data.mkdir()
    clip = make_talking_clip(3, seconds=0.21, fps=24.0, size=64)
    write_mp4(str(data / "c0.mp4"), clip.frames, clip.fps, clip.waveform, clip.sample_rate)
    save_file({"text": torch.randn(5, WIDTH)}, str(data / "c0.text.safetensors"))
    eos = torch.randn(1, 1, WIDTH)  # [1, L, D] as a pipeline's encoder returns it
    save_file({"text": eos}, str(tmp_path / "empty.safetensors"))
    (data / "captions.json").write_text(json.dumps([{"file": "c0.mp4", "video_caption": "a face",
                                                     "text_embedding": "c0.text.safetensors"}]))
    cfg = TrainConfig(data_dir=str(data), cache_dir=str(tmp_path / "cache"), output_dir=str(tmp_path / "out"),
                      preset="tiny", model_overrides=TINY, text_encoder="precomputed", caption_dropout=0.5,
                      empty_text_embedding=str(tmp_path / "empty.safetensors"), steps=2, save_every=0)
    dataset = encode.cached_dataset(cfg, show_progress=False)
    assert torch.equal(dataset.empty_text[:1], eos[0]) and dataset.empty_text[1:].abs().sum() == 0
    assert dataset.empty_text.shape == dataset[0]["text"].shape == (TINY["text_len"], WIDTH)

    # The trainer feeds it to the model: with another empty prompt, the steps that drop
    # the caption (there are some) come out differently.
    drops = [bool(draw_noise(dataset.batch([0]), [sample_seed(cfg.seed, step, 0)], cfg.shift, cfg.caption_dropout)
                  .drop_text[0]) for step in range(cfg.steps)]
    assert any(drops)
    history = train(cfg, dataset, show_progress=False).history
    assert len(history) == 2
    save_file({"text": -eos}, str(tmp_path / "empty.safetensors"))
    other = encode.cached_dataset(dataclasses.replace(cfg, output_dir=str(tmp_path / "out2")), show_progress=False)
    assert torch.equal(other.empty_text[:1], -eos[0])
    changed = train(dataclasses.replace(cfg, output_dir=str(tmp_path / "out2")), other, show_progress=False).history
    assert [r["loss"] for r in changed] != [r["loss"] for r in history]


def test_dropping_without_a_cached_empty_prompt_stops_with_what_to_do(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    g = torch.Generator().manual_seed(0)
    clip = {"video": torch.randn(16, 2, 4, 4, generator=g), "audio": torch.randn(20, 6, generator=g),
            "text": torch.randn(64, WIDTH, generator=g), "fps": torch.tensor([8.0])}
    save_file(clip, str(cache / "c0.safetensors"))
    write_index(str(cache), [str(cache / "c0.safetensors")])  # a cache from before the empty prompt was cached
    cfg = TrainConfig(cache_dir=str(cache), output_dir=str(tmp_path / "out"), preset="tiny", model_overrides=TINY,
                      caption_dropout=0.5, steps=1, mouth_weight=0.0)
    with pytest.raises(ValueError, match="cache them again"):
        train(cfg, show_progress=False)
    batch = CachedClips([str(cache / "c0.safetensors")]).batch([0])
    noise = dataclasses.replace(draw_noise(batch, [0], 3.0), drop_text=torch.tensor([True]))
    with pytest.raises(ValueError, match="empty_text"):
        flow_losses(build_model(cfg), batch, noise, mouth_weight=0.0)
