"""Trainer text encoders: umT5 as Wan2.1 uses it (against transformers' UMT5EncoderModel),
its single-file layouts, precomputed embeddings, and the cache fingerprint."""

from __future__ import annotations

import io
import json
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from jova_core.cli import main
from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from jova_core.text import format_prompt
from jova_core.text.umt5 import UMT5TextEncoder
from jova_core.train.config import TrainConfig
from jova_core.train.data import read_captions
from jova_core.train.encode import LatentClipEncoder, PrecomputedText, build_text_encoder, cached_dataset

WAN_TEXT_LEN = 512
WIDTH = 16  # umT5 d_model here; also the tiny JoVA's text_dim
TINY_JOVA = {"dim": 16, "num_heads": 2, "ffn_dim": 32, "freq_dim": 16, "text_dim": WIDTH, "text_len": 64}
PROMPTS = [
    format_prompt("a woman talks to the camera in a bright kitchen", "a clear female voice",
                  "hello there how are you today the weather is fine and the dog barks at the mailman"),
    format_prompt("rain falls on a tin roof", "rain"),
]


@pytest.fixture(scope="module")
def umt5(tmp_path_factory):
    """A tiny random umT5 saved as a transformers folder with an offline-trained tokenizer;
    returns (folder, sentencepiece model bytes, the reference model)."""
    # The umT5 path is optional for users: these tests need its packages, the others do not.
    transformers = pytest.importorskip("transformers")
    sentencepiece = pytest.importorskip("sentencepiece")
    if int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip("the offline test tokenizer is built with transformers 5's T5Tokenizer(vocab=...)")
    root = tmp_path_factory.mktemp("umt5")
    corpus = [p.lower() for p in PROMPTS] + PROMPTS + ["the quick brown fox jumps over the lazy dog"]
    model_bytes = io.BytesIO()
    # umT5's special ids (pad 0, eos 1, unk 2, no bos); "identity" normalisation so the
    # transformers tokenizer built from the same pieces tokenizes exactly alike.
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 10), model_writer=model_bytes, vocab_size=64, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, normalization_rule_name="identity",
        minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_proto=model_bytes.getvalue())
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    tokenizer = transformers.T5Tokenizer(vocab=vocab, extra_ids=0)
    torch.manual_seed(0)
    config = transformers.UMT5Config(vocab_size=64, d_model=WIDTH, d_kv=8, num_heads=2, num_layers=2, d_ff=24,
                                     feed_forward_proj="gated-gelu", dropout_rate=0.0)
    model = transformers.UMT5EncoderModel(config).eval()
    folder = root / "umt5-tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model_bytes.getvalue(), model


def wan_reference(folder, prompts, max_length):
    """Wan2.1 / diffusers WanPipeline: pad to max_length, mask, keep the real tokens' states, zero the rest."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.UMT5EncoderModel.from_pretrained(folder).eval()
    tokens = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True,
                       add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    seq_lens = tokens.attention_mask.gt(0).sum(dim=1)
    with torch.no_grad():
        states = model(tokens.input_ids, tokens.attention_mask).last_hidden_state
    out = torch.zeros_like(states)
    for i, n in enumerate(seq_lens):
        out[i, :n] = states[i, :n]
    return out, seq_lens, tokens.input_ids


def test_umt5_folder_matches_transformers_with_wans_padding_and_truncation(umt5):
    folder, _, _ = umt5
    ours = UMT5TextEncoder(str(folder), device="cpu", text_len=WAN_TEXT_LEN, text_dim=WIDTH)(PROMPTS)
    reference, seq_lens, ids = wan_reference(folder, PROMPTS, WAN_TEXT_LEN)
    assert ours.shape == (2, WAN_TEXT_LEN, WIDTH) and ours.dtype == torch.float32
    # Long enough to use the logarithmic relative-position buckets (distance > 8).
    assert seq_lens[0] > 40 and seq_lens[0] != seq_lens[1]
    assert (ours - reference).abs().max() <= 1e-5
    assert ours[0, seq_lens[0] - 1].abs().sum() > 0 and ours[0, seq_lens[0]:].abs().sum() == 0
    assert ids[0, seq_lens[0] - 1] == 1  # EOS is the last real token

    # Past text_len tokens the prompt is cut and EOS kept last, as Wan's tokenizer does.
    short = UMT5TextEncoder(str(folder), device="cpu", text_len=8, text_dim=WIDTH)
    reference, seq_lens, ids = wan_reference(folder, PROMPTS[:1], 8)
    assert seq_lens[0] == 8 and short.tokenize(PROMPTS[0]) == ids[0].tolist()
    assert (short(PROMPTS[0]) - reference).abs().max() <= 1e-5


def hf_encoder_state(model) -> dict[str, torch.Tensor]:
    """Encoder weights in Hugging Face / ComfyUI key names (ComfyUI's files have no embed_tokens copy)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}


def to_wan_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same weights in Wan2.1's T5Encoder names (token_embedding, blocks.N.{norm1,attn,
    pos_embedding,norm2,ffn.gate.0,ffn.fc1,ffn.fc2}, norm), written from Wan's module layout."""
    out = {"token_embedding.weight": state["shared.weight"], "norm.weight": state["encoder.final_layer_norm.weight"]}
    n = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.block."))
    for i in range(n):
        hf = f"encoder.block.{i}.layer."
        out[f"blocks.{i}.norm1.weight"] = state[hf + "0.layer_norm.weight"]
        for p in "qkvo":
            out[f"blocks.{i}.attn.{p}.weight"] = state[hf + f"0.SelfAttention.{p}.weight"]
        out[f"blocks.{i}.pos_embedding.embedding.weight"] = state[hf + "0.SelfAttention.relative_attention_bias.weight"]
        out[f"blocks.{i}.norm2.weight"] = state[hf + "1.layer_norm.weight"]
        out[f"blocks.{i}.ffn.gate.0.weight"] = state[hf + "1.DenseReluDense.wi_0.weight"]
        out[f"blocks.{i}.ffn.fc1.weight"] = state[hf + "1.DenseReluDense.wi_1.weight"]
        out[f"blocks.{i}.ffn.fc2.weight"] = state[hf + "1.DenseReluDense.wo.weight"]
    return out


def test_comfyui_and_wan_single_files_give_the_folders_states(umt5, tmp_path):
    import transformers

    folder, model_bytes, model = umt5
    expected = UMT5TextEncoder(str(folder), device="cpu", text_len=WAN_TEXT_LEN)(PROMPTS)
    spiece = torch.frombuffer(bytearray(model_bytes), dtype=torch.uint8)

    # ComfyUI's umt5_xxl_fp16.safetensors layout: HF keys + the tokenizer as "spiece_model".
    comfy = tmp_path / "umt5_xxl_tiny.safetensors"
    save_file({**hf_encoder_state(model), "spiece_model": spiece}, str(comfy))
    encoder = UMT5TextEncoder(str(comfy), device="cpu", text_len=WAN_TEXT_LEN)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert [encoder.tokenize(p) for p in PROMPTS] == [tokenizer(p).input_ids for p in PROMPTS]
    assert (encoder(PROMPTS) - expected).abs().max() <= 1e-5

    # Wan2.1's release: a torch state dict in Wan's names, tokenizer in google/umt5-xxl beside it.
    release = tmp_path / "Wan2.1-T2V-tiny"
    tokenizer.save_pretrained(release / "google" / "umt5-xxl")
    (release / "google" / "umt5-xxl" / "spiece.model").write_bytes(model_bytes)  # read with sentencepiece
    torch.save(to_wan_keys(hf_encoder_state(model)), release / "models_t5_umt5-xxl-enc-bf16.pth")
    wan = UMT5TextEncoder(str(release / "models_t5_umt5-xxl-enc-bf16.pth"), device="cpu", text_len=WAN_TEXT_LEN)
    assert (wan(PROMPTS) - expected).abs().max() <= 1e-5

    # A file with a block missing names what is missing instead of running with random weights.
    broken = hf_encoder_state(model)
    del broken["encoder.block.1.layer.1.DenseReluDense.wo.weight"]
    save_file({**broken, "spiece_model": spiece}, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ValueError, match="block.1.layer.1.DenseReluDense.wo.weight"):
        UMT5TextEncoder(str(tmp_path / "broken.safetensors"), device="cpu")(PROMPTS[1])
    t5 = hf_encoder_state(model)
    del t5["encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"]  # T5 v1.1: block 0 only
    save_file(t5, str(tmp_path / "t5xxl.safetensors"))
    with pytest.raises(ValueError, match="is a T5 encoder"):
        UMT5TextEncoder(str(tmp_path / "t5xxl.safetensors"), device="cpu")(PROMPTS[1])
    incomplete = tmp_path / "incomplete"
    model.save_pretrained(incomplete)
    save_file({k: v for k, v in load_file(str(incomplete / "model.safetensors")).items()
               if "block.1.layer.1" not in k}, str(incomplete / "model.safetensors"))
    with pytest.raises(ValueError, match="not a complete umT5 encoder"):
        UMT5TextEncoder(str(incomplete), device="cpu")(PROMPTS[1])
    save_file({"encoder.downsamples.0.weight": torch.zeros(2)}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(ValueError, match="not a umT5 encoder"):
        UMT5TextEncoder(str(tmp_path / "vae.safetensors"), device="cpu")(PROMPTS[1])
    # Without a tokenizer in the file or beside it, the error says where it looked.
    lone = tmp_path / "lone"
    lone.mkdir()
    save_file(hf_encoder_state(model), str(lone / "umt5.safetensors"))
    with pytest.raises(FileNotFoundError, match="google/umt5-xxl"):
        UMT5TextEncoder(str(lone / "umt5.safetensors"), device="cpu")(PROMPTS[1])
    with pytest.raises(ValueError, match="4096|text_dim 4096"):
        UMT5TextEncoder(str(folder), device="cpu", text_dim=4096)(PROMPTS[1])


def test_comfyui_fp8_scaled_file_is_dequantised_as_comfyui_does(umt5, tmp_path):
    """umt5_xxl_fp8_e4m3fn_scaled: each linear weight stored as fp8 with a float32
    scale_weight; ComfyUI computes with weight * scale_weight."""
    folder, model_bytes, model = umt5
    state = hf_encoder_state(model)
    quantised, dequantised = {}, {}
    for key, weight in state.items():
        if weight.dim() == 2 and "SelfAttention.relative_attention_bias" not in key and key != "shared.weight":
            scale = weight.abs().max() / 448.0
            w8 = (weight / scale).to(torch.float8_e4m3fn)
            quantised[key], quantised[key[: -len("weight")] + "scale_weight"] = w8, scale.reshape(())
            dequantised[key] = w8.float() * scale
        else:
            quantised[key] = dequantised[key] = weight
    quantised["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    quantised["spiece_model"] = torch.frombuffer(bytearray(model_bytes), dtype=torch.uint8)
    save_file(quantised, str(tmp_path / "umt5_fp8_scaled.safetensors"))
    save_file({**dequantised, "spiece_model": quantised["spiece_model"]}, str(tmp_path / "umt5_dequantised.safetensors"))
    fp8 = UMT5TextEncoder(str(tmp_path / "umt5_fp8_scaled.safetensors"), device="cpu")(PROMPTS)
    plain = UMT5TextEncoder(str(tmp_path / "umt5_dequantised.safetensors"), device="cpu")(PROMPTS)
    assert (fp8 - plain).abs().max() <= 1e-5
    # and near the full-precision weights' states: the scales were applied (fp8 keeps 3 mantissa bits)
    full = UMT5TextEncoder(str(folder), device="cpu")(PROMPTS)
    assert 0 < (fp8 - full).abs().mean() < 0.1 * full.abs().mean()


def test_missing_packages_say_what_to_install(umt5, tmp_path, monkeypatch):
    folder, model_bytes, model = umt5
    comfy = tmp_path / "umt5.safetensors"
    save_file({**hf_encoder_state(model), "spiece_model": torch.frombuffer(bytearray(model_bytes), dtype=torch.uint8)},
              str(comfy))
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "sentencepiece", None)  # import sentencepiece -> ImportError
        with pytest.raises(ImportError, match="pip install transformers sentencepiece"):
            UMT5TextEncoder(str(comfy), device="cpu")(PROMPTS[1])
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match="pip install transformers sentencepiece"):
        UMT5TextEncoder(str(folder), device="cpu")(PROMPTS[1])


def test_cache_fingerprint_changes_with_the_text_encoder(umt5, tmp_path):
    folder, model_bytes, model = umt5
    file_a = tmp_path / "a.safetensors"
    save_file({**hf_encoder_state(model), "spiece_model": torch.frombuffer(bytearray(model_bytes), dtype=torch.uint8)},
              str(file_a))
    file_b = tmp_path / "b.safetensors"
    save_file(hf_encoder_state(model), str(file_b))
    encoders = [build_text_encoder(TrainConfig(text_encoder=name), WIDTH, 64) for name in
                ("demo", "precomputed", f"umt5:{file_a}", f"umt5:{file_b}")]
    encoders += [UMT5TextEncoder(str(folder), device="cpu", text_len=n, dtype=dtype)
                 for n, dtype in ((64, torch.float32), (32, torch.float32), (64, torch.bfloat16))]
    prints = {LatentClipEncoder(DemoVideoCodec(), DemoAudioCodec(), e).fingerprint for e in encoders}
    assert len(prints) == len(encoders)
    with pytest.raises(ValueError, match="umt5:<"):
        build_text_encoder(TrainConfig(text_encoder="t5xxl"), WIDTH, 64)
    with pytest.raises(FileNotFoundError, match="no umT5 text encoder"):
        build_text_encoder(TrainConfig(text_encoder=f"umt5:{tmp_path / 'nothing'}"), WIDTH, 64)


def test_recipe_reads_a_umt5_path_relative_to_itself(tmp_path):
    (tmp_path / "recipe.json").write_text(json.dumps({"text_encoder": "umt5:models/umt5.safetensors"}))
    cfg = TrainConfig.from_file(str(tmp_path / "recipe.json"))
    assert cfg.text_encoder == "umt5:" + str(tmp_path / "models" / "umt5.safetensors")


def test_precomputed_file_checks_shape_key_and_values(tmp_path):
    text = PrecomputedText(text_dim=WIDTH, text_len=8)
    states = torch.randn(5, WIDTH, dtype=torch.bfloat16)
    save_file({"text": states[None]}, str(tmp_path / "ok.safetensors"))
    loaded = text.load(str(tmp_path / "ok.safetensors"))
    assert loaded.shape == (8, WIDTH) and torch.equal(loaded[:5], states.float()) and loaded[5:].abs().sum() == 0
    cases = {
        "wide": ({"text": torch.randn(5, WIDTH + 1)}, rf"\[L, {WIDTH}\]"),
        "long": ({"text": torch.randn(9, WIDTH)}, "L <= 8"),
        "ints": ({"text": torch.ones(5, WIDTH, dtype=torch.int64)}, "float tensor"),
        "two": ({"a": torch.randn(5, WIDTH), "b": torch.randn(5, WIDTH)}, "no tensor 'text'"),
        "nan": ({"text": torch.full((5, WIDTH), float("nan"))}, "NaN"),
    }
    for name, (tensors, message) in cases.items():
        save_file(tensors, str(tmp_path / f"{name}.safetensors"))
        with pytest.raises(ValueError, match=message):
            text.load(str(tmp_path / f"{name}.safetensors"))


def write_clips(data_dir, captions: list[dict]) -> None:
    from jova_core.io import write_mp4
    from jova_core.train.synthetic import make_talking_clip

    data_dir.mkdir(exist_ok=True)
    for i, row in enumerate(captions):
        clip = make_talking_clip(10 + i, seconds=0.21, fps=24.0, size=64)
        write_mp4(str(data_dir / row["file"]), clip.frames, clip.fps, clip.waveform, clip.sample_rate)
    (data_dir / "captions.json").write_text(json.dumps(captions))


def test_precomputed_embeddings_flow_into_the_cache_and_train_two_steps(tmp_path, capsys):
    data = tmp_path / "clips"
    data.mkdir()
    embeddings = [torch.randn(n, WIDTH) for n in (7, 30)]
    for i, states in enumerate(embeddings):
        save_file({"text": states}, str(data / f"c{i}.text.safetensors"))
    captions = [{"file": f"c{i}.mp4", "video_caption": "a face", "audio_caption": "speech",
                 "transcript": "ba ma", "text_embedding": f"c{i}.text.safetensors"} for i in range(2)]
    write_clips(data, captions)
    assert read_captions(str(data / "captions.json"))[1].text_embedding == "c1.text.safetensors"
    recipe = {"data_dir": "clips", "cache_dir": "cache", "output_dir": "out", "preset": "tiny",
              "model_overrides": TINY_JOVA, "text_encoder": "precomputed", "steps": 2, "batch_size": 2,
              "save_every": 0}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    cfg = TrainConfig.from_file(str(tmp_path / "recipe.json"))
    batch = cached_dataset(cfg, show_progress=False).batch([0, 1])
    for i, states in enumerate(embeddings):
        assert torch.equal(batch["text"][i, : len(states)], states) and batch["text"][i, len(states):].abs().sum() == 0
    assert batch["text"].shape == (2, 64, WIDTH)

    assert main(["train", str(tmp_path / "recipe.json"), "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (tmp_path / "out" / "transformer.safetensors").exists()

    # A re-encoded prompt redoes its clip only; a wrong width stops with the model's sizes.
    before = {i: (tmp_path / "cache" / f"c{i}.safetensors").stat().st_mtime_ns for i in range(2)}
    save_file({"text": torch.randn(4, WIDTH)}, str(data / "c1.text.safetensors"))
    cached_dataset(cfg, show_progress=False)
    assert (tmp_path / "cache" / "c0.safetensors").stat().st_mtime_ns == before[0]
    assert (tmp_path / "cache" / "c1.safetensors").stat().st_mtime_ns != before[1]
    assert torch.equal(load_file(str(tmp_path / "cache" / "c1.safetensors"))["text"][:4],
                       load_file(str(data / "c1.text.safetensors"))["text"])
    save_file({"text": torch.randn(4, 4096)}, str(data / "c1.text.safetensors"))
    with pytest.raises(ValueError, match=rf"c1.text.safetensors.*\[L, {WIDTH}\]"):
        cached_dataset(cfg, show_progress=False)


def test_precomputed_recipes_that_cannot_work_stop_early(tmp_path):
    data = tmp_path / "clips"
    data.mkdir()
    rows = [{"file": "c0.mp4", "video_caption": "a face", "text_embedding": "c0.text.safetensors"}]
    (data / "captions.json").write_text(json.dumps(rows))
    (data / "c0.mp4").write_bytes(b"not decoded before the checks")
    base = {"data_dir": str(data), "cache_dir": str(tmp_path / "cache"), "preset": "tiny", "model_overrides": TINY_JOVA}
    with pytest.raises(ValueError, match="set text_encoder to 'precomputed'"):
        cached_dataset(TrainConfig(**base), show_progress=False)
    with pytest.raises(FileNotFoundError, match="c0.text.safetensors"):
        cached_dataset(TrainConfig(**base, text_encoder="precomputed"), show_progress=False)
    synthetic = {**base, "data_dir": "", "synthetic": {"clips": 1}}
    with pytest.raises(ValueError, match="synthetic clips have no precomputed"):
        cached_dataset(TrainConfig(**synthetic, text_encoder="precomputed"), show_progress=False)
    encoder = LatentClipEncoder(DemoVideoCodec(), DemoAudioCodec(), PrecomputedText(WIDTH, 64))
    with pytest.raises(ValueError, match="no text_embedding"):
        encoder.clip_text("a prompt", "", "clip c9.mp4")


def test_umt5_recipe_caches_the_encoders_states(umt5, tmp_path, monkeypatch):
    folder, _, _ = umt5
    # On a GPU the recipe's encoder runs in bfloat16; the 1e-5 comparison needs float32.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = tmp_path / "clips"
    rows = [{"file": "c0.mp4", "video_caption": "a woman talks", "audio_caption": "a voice", "transcript": "hello there"}]
    write_clips(data, rows)
    cfg = TrainConfig(data_dir=str(data), cache_dir=str(tmp_path / "cache"), preset="tiny", model_overrides=TINY_JOVA,
                      text_encoder=f"umt5:{folder}")
    cached = cached_dataset(cfg, show_progress=False)[0]["text"]
    prompt = read_captions(str(data / "captions.json"))[0].prompt
    reference, _, _ = wan_reference(folder, [prompt], 64)
    assert cached.shape == (64, WIDTH) and (cached - reference[0]).abs().max() <= 1e-5
