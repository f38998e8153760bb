"""T5Gemma text encoder as MagiHuman uses it: a tiny random encoder-decoder saved in the released
folder layout, loaded offline (encoder only), checked against transformers' T5GemmaEncoderModel
with MagiHuman's length rules (whole prompt encoded, float16 round trip, zero-padded or trimmed
to text_len)."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, T5GemmaConfig, T5GemmaEncoderModel, T5GemmaForConditionalGeneration

from jova_core.text import build_text_encoder
from jova_core.text.t5gemma import T5GemmaTextEncoder

WORDS = ["<pad>", "<bos>", "<eos>", "<unk>"] + [f"w{i}" for i in range(60)]
MODULE = dict(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=4,
              layer_types=["sliding_attention", "full_attention"], pad_token_id=0, bos_token_id=1, eos_token_id=2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A random tiny T5Gemma in the layout of google/t5gemma-9b-9b-ul2 (encoder-decoder weights,
    config.json, tokenizer files); its tokenizer adds <bos> by default, as Gemma's does."""
    path = tmp_path_factory.mktemp("t5gemma")
    torch.manual_seed(0)
    config = T5GemmaConfig(encoder=MODULE, decoder=MODULE, vocab_size=len(WORDS), pad_token_id=0, bos_token_id=1,
                           eos_token_id=2)
    T5GemmaForConditionalGeneration(config).eval().save_pretrained(path)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(path)
    return str(path)


def reference_states(folder, ids):
    model = T5GemmaEncoderModel.from_pretrained(folder, is_encoder_decoder=False, local_files_only=True).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).last_hidden_state[0].half().float()


def test_short_prompt_is_padded_with_zeros(folder):
    encoder = build_text_encoder(f"t5gemma:{folder}", 32, 16)
    assert isinstance(encoder, T5GemmaTextEncoder)
    prompt = "w1 w2 w3 w4 w5"
    assert encoder.tokenize(prompt) == [1, 5, 6, 7, 8, 9]  # <bos> first, no padding or truncation
    features, length = encoder.encode_with_length(prompt)
    assert features.shape == (16, 32) and length == 6
    expected = reference_states(folder, [1, 5, 6, 7, 8, 9])
    assert (features[:6] - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert features[6:].abs().max() == 0
    assert torch.equal(encoder(["w1 w2 w3 w4 w5"])[0], features)


def test_long_prompt_is_encoded_whole_then_trimmed(folder):
    encoder = T5GemmaTextEncoder(folder, text_len=8, text_dim=32)
    prompt = " ".join(f"w{i}" for i in range(20))
    features, length = encoder.encode_with_length(prompt)
    assert length == 8 and features.shape == (8, 32)
    ids = [1] + [4 + i for i in range(20)]
    expected = reference_states(folder, ids)[:8]  # the later tokens still shape the first 8 rows
    assert (features - expected).abs().max() <= 1e-4 * expected.abs().max()
    alone = reference_states(folder, ids[:8])
    assert (alone - expected).abs().max() > 1e-3


def test_wrong_folders_and_widths_are_named(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="t5gemma-9b-9b-ul2"):
        T5GemmaTextEncoder(str(tmp_path))
    with pytest.raises(ValueError, match="32-wide.*text_dim 3584"):
        T5GemmaTextEncoder(folder).encode_one("w1")



def test_a_t5gemma_shard_picked_elsewhere_is_named(folder):
    from safetensors import safe_open

    from jova_core.identify import identify

    with safe_open(f"{folder}/model.safetensors", "pt") as f:
        kind = identify(list(f.keys()))
    assert kind.name == "t5gemma" and "JoVA T5Gemma Text Encoder" in kind.hint


def test_prompt_format_follows_the_encoder_plain_for_t5gemma_sections_for_jova(folder):
    from jova_core.text import format_prompt
    from jova_core.text.demo import DemoTextEncoder

    assert T5GemmaTextEncoder(folder).prompt_format == "plain" and DemoTextEncoder(48, 4).prompt_format == "sections"
    # JoVA's sections, as before; MagiHuman's plain text: the boxes joined, the words spoken in quotes.
    assert format_prompt(" a  cat ", "purr", "hi there") == "<Video Caption>: a cat <Audio Caption>: purr <Transcript>: hi there"
    assert format_prompt(" a  cat ", "purr", "hi there", "plain") == 'a cat purr "hi there"'
    assert format_prompt("a cat", "", "", "plain") == "a cat" and format_prompt("", "", "hi", "plain") == '"hi"'
    with pytest.raises(ValueError, match="prompt format must be one of"):
        format_prompt("a", style="tags")


def test_a_transformers_without_t5gemma_is_named(folder, monkeypatch):
    """ComfyUI installs can hold a transformers older than T5Gemma: say so and how to fix it,
    rather than fail with an AttributeError deep in the loader."""
    import transformers

    # transformers resolves names lazily: an old release answers the lookup with nothing.
    monkeypatch.setattr(transformers, "T5GemmaEncoderModel", None)
    with pytest.raises(ImportError, match=r"^transformers \S+ has no T5Gemma encoder: pip install -U transformers$"):
        T5GemmaTextEncoder(folder).load()
