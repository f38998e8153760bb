"""The ComfyUI nodes, run through their V3 ``execute`` with ComfyUI stand-ins.

The stand-ins (tests/comfy_stubs) are installed only inside this module's fixture and
the pack is imported the way ComfyUI imports a custom-node folder (a package under a
path-like name, never as top-level ``nodes``). Results are compared with jova_core run
directly (sampler, codecs, mouth masks), diffusers' Wan VAE config, ffmpeg's reading of
the written MP4, and the prompt-section parser (jova_core.text.prompt).
"""

from __future__ import annotations

import ast
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from comfy_stubs import harness
import torch

REPO = Path(__file__).resolve().parents[1]


run_node = harness.run_node


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    # ComfyUI's own top-level `nodes` module is always loaded before custom nodes; a
    # stand-in for it proves the pack never imports it by mistake.
    comfy_nodes = ModuleType("nodes")
    had_nodes = "nodes" in sys.modules
    if not had_nodes:
        sys.modules["nodes"] = comfy_nodes
    try:
        with harness.comfy_stubs(tmp_path_factory.mktemp("comfyui")) as stubs:
            stubs.pack = harness.load_pack()
            stubs.node_classes = harness.node_list(stubs.pack)  # imports the nodes, as ComfyUI's loader does
            stubs.comfy_nodes = sys.modules["nodes"]
            stubs.n = sys.modules[harness.PACK_NAME + ".nodes"]
            stubs.core = lambda name: sys.modules[f"{harness.PACK_NAME}.jova_core.{name}"]
            yield stubs
    finally:
        if not had_nodes:
            sys.modules.pop("nodes", None)


@pytest.fixture(autouse=True)
def _fresh_records(env):
    env.comfy.utils.progress.clear()
    env.comfy.model_management.loaded.clear()
    env.comfy.model_management.interrupt_processing = False


def tiny_handle(env, seed=0, **kwargs):
    """A tiny random JoVA transformer (non-zero heads, so velocities are not all zero)."""
    config = env.core("config").preset_config("tiny")
    torch.manual_seed(seed)
    model = env.core("model.transformer").JoVATransformer(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return env.n.model_handle.JoVAModelHandle(model, "tiny test model", **kwargs)


def demo_text(env, model):
    return env.core("text.demo").DemoTextEncoder(model.config.text_dim, model.config.text_len)


def encode(env, encoder, video="a face", audio="a voice", transcript="ba ma"):
    return run_node(env.n.JoVATextEncode, text_encoder=encoder, video_caption=video, audio_caption=audio,
                    transcript=transcript)[0]


def empty_latent(env, handle, width=64, height=64, seconds=0.6, fps=8.0):
    return run_node(env.n.JoVAEmptyLatent, model=handle, width=width, height=height, seconds=seconds, fps=fps,
                    batch_size=1)[0]


SAMPLER_DEFAULTS = dict(seed=7, steps=3, sampler="euler", shift=3.0, cfg_video=2.0, cfg_audio=1.5, mode="t2va")


# -- loading -------------------------------------------------------------------------------


def registered_node_names() -> set[str]:
    """Every ComfyNode class written in nodes/*.py (read from the source, not imported): a node
    written but left out of nodes.NODES, or listed twice, fails the tests below."""
    names = set()
    for path in (REPO / "nodes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "io.ComfyNode" for b in node.bases):
                names.add(node.name)
    return names


def test_entrypoint_lists_every_node_once(env):
    nodes = harness.node_list(env.pack)
    assert nodes == list(env.n.NODES)
    ids = [cls.GET_SCHEMA().node_id for cls in nodes]
    assert len(ids) == len(set(ids)) and {cls.__name__ for cls in nodes} == registered_node_names()
    for cls in nodes:
        schema = cls.GET_SCHEMA()
        assert schema.category == "JoVA" and schema.display_name.startswith("JoVA ")
        assert isinstance(cls, type) and issubclass(cls, env.io.ComfyNode)
    # ComfyUI prefers NODE_CLASS_MAPPINGS when a module has it; the pack must not.
    assert not hasattr(env.pack, "NODE_CLASS_MAPPINGS")


def test_pack_imports_its_own_parts_relatively(env):
    assert env.comfy_nodes is sys.modules["nodes"] and not vars(env.comfy_nodes).get("NODES")
    mine = [k for k in sys.modules if k.startswith(harness.PACK_NAME + ".")]
    assert f"{harness.PACK_NAME}.nodes.sampler" in mine and f"{harness.PACK_NAME}.jova_core.sampling" in mine


def test_pack_loads_like_comfyui_in_a_clean_process(tmp_path):
    """As ComfyUI does it: the folder imported under its path as the module name, with
    neither the repository nor its parent on sys.path. Any absolute `import jova_core` or
    `import nodes` inside the pack fails here."""
    script = textwrap.dedent(f"""
        import importlib.util, sys
        REPO_PATHS = {{{str(REPO)!r}, {str(REPO.parent)!r}}}
        spec = importlib.util.spec_from_file_location("h", {str(REPO / 'tests' / 'comfy_stubs' / 'harness.py')!r})
        h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)
        name = {str(REPO).replace('.', '_x_')!r} + "/ComfyUI-JoVA"
        with h.comfy_stubs({str(tmp_path)!r}):
            pack = h.load_pack(name)
            nodes = h.node_list(pack)
            n = sys.modules[name + ".nodes"]
            model = h.run_node(n.JoVAModelLoader, model_name=n.loaders.DEMO_MODEL, weight_dtype="fp32",
                               attention="sdpa", offload="whole model", blocks_on_gpu=0)[0]
            latent = h.run_node(n.JoVAEmptyLatent, model=model, width=64, height=64, seconds=0.5, fps=8.0,
                                batch_size=1)[0]
            enc = h.run_node(n.JoVATextEncoderLoader, model=model,
                             encoder=sys.modules[name + ".jova_core.text.demo"].DemoTextEncoder.name)[0]
            cond = h.run_node(n.JoVATextEncode, text_encoder=enc, video_caption="a", audio_caption="b",
                              transcript="")[0]
            out = h.run_node(n.JoVASampler, model=model, positive=cond, negative=cond, latent=latent, seed=1,
                             steps=1, sampler="euler", shift=3.0, cfg_video=1.0, cfg_audio=1.0, mode="t2va")[0]
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("jova_core", "nodes"))
        on_path = [p for p in sys.path if p in REPO_PATHS]
        print(len(nodes), leaked, on_path)
    """)
    env_vars = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env=env_vars, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == f"{len(registered_node_names())} [] []", done.stdout


def test_model_loader_reads_native_files_and_names_wrong_ones(env):
    models = env.base_dir / "models"
    (models / "jova").mkdir(exist_ok=True)
    handle = tiny_handle(env)
    env.core("checkpoint").save_transformer(handle.transformer, str(models / "jova" / "tiny.safetensors"))
    options = env.n.JoVAModelLoader.GET_SCHEMA().inputs[0].options
    assert options[0] == env.n.loaders.DEMO_MODEL and "tiny.safetensors" in options

    loaded = run_node(env.n.JoVAModelLoader, model_name="tiny.safetensors", weight_dtype="fp32", attention="sdpa",
                      offload="block swap", blocks_on_gpu=1)[0]
    assert loaded.offload == "block swap" and loaded.blocks_on_gpu == 1
    compiled = run_node(env.n.JoVAModelLoader, model_name="tiny.safetensors", weight_dtype="fp32", attention="sdpa",
                        offload="whole model", blocks_on_gpu=0, compile_blocks=True)[0].transformer
    assert all(hasattr(block.forward, "__wrapped__") for block in compiled.blocks)  # compiled on first use
    for key, value in handle.transformer.state_dict().items():
        assert torch.equal(loaded.transformer.state_dict()[key], value), key

    # fp8 storage: linear weights in 8 bits, output within fp8's precision of fp32.
    fp8 = run_node(env.n.JoVAModelLoader, model_name="tiny.safetensors", weight_dtype="fp8_e4m3fn",
                   attention="sdpa", offload="whole model", blocks_on_gpu=0)[0].transformer
    assert fp8.blocks[0].video.self_attn.q.weight.dtype == torch.float8_e4m3fn
    inputs = dict(video=torch.randn(1, 16, 2, 4, 4), audio=torch.randn(1, 20, 6), t_video=torch.tensor([500.0]),
                  t_audio=torch.tensor([500.0]), text=torch.randn(1, 4, 16))
    with torch.no_grad():
        ref, got = handle.transformer(**inputs), fp8(**inputs)
    for r, g in zip(ref, got):
        assert (g.float() - r).norm() / r.norm() < 0.1

    from safetensors.torch import save_file

    save_file({"encoder.downsamples.0.residual.0.gamma": torch.zeros(4), "decoder.upsamples.0.x": torch.zeros(1)},
              str(models / "diffusion_models" / "wan_2.1_vae.safetensors"))
    with pytest.raises(ValueError, match="Wan2.1 video VAE"):
        env.n.JoVAModelLoader.execute(model_name="wan_2.1_vae.safetensors", weight_dtype="fp32", attention="sdpa",
                                      offload="whole model", blocks_on_gpu=0)


def test_the_packs_own_errors_reach_comfyui_as_plain_value_errors(env):
    """ComfyUI names an exception by its class's module, which for a class of the pack is
    the pack folder's path: a broken download, a truncated model and an unwritable output
    folder show as 'ValueError: <one line>'."""
    models, weights = env.base_dir / "models", env.core("weights")
    (models / "jova").mkdir(exist_ok=True)
    (models / "jova" / "broken.safetensors").write_bytes(b"\0" * 100)
    handle = tiny_handle(env)
    state = {k: v for k, v in handle.transformer.state_dict().items() if not k.startswith("blocks.1.")}
    env.core("checkpoint").save_state_dict(handle.config, state, str(models / "jova" / "truncated.safetensors"))
    loader = dict(weight_dtype="fp32", attention="sdpa", offload="whole model", blocks_on_gpu=0)
    for name, original in (("broken.safetensors", weights.WeightFileError),
                           ("truncated.safetensors", weights.StateDictMismatch)):
        with pytest.raises(ValueError) as caught:
            env.n.JoVAModelLoader.execute(model_name=name, **loader)
        assert type(caught.value) is ValueError and type(caught.value.__cause__) is original
        assert str(caught.value) == str(caught.value.__cause__) and "\n" not in str(caught.value)
    # The nodes' own plain ValueErrors pass through untouched.
    with pytest.raises(ValueError, match="weight_dtype") as caught:
        env.n.JoVAModelLoader.execute(model_name="broken.safetensors", **{**loader, "weight_dtype": "fp5"})
    assert caught.value.__cause__ is None


def test_codec_and_text_encoder_loaders_offer_the_demo(env):
    loaders = env.n.loaders
    audio = run_node(env.n.JoVAAudioCodecLoader, vae_name=loaders.DEMO_CODEC, vocoder_name=loaders.NO_VOCODER)[0]
    video = run_node(env.n.JoVAVideoCodecLoader, codec_name=loaders.DEMO_CODEC)[0]
    demo = env.core("codecs.demo")
    assert isinstance(audio, demo.DemoAudioCodec) and isinstance(video, demo.DemoVideoCodec)
    handle = tiny_handle(env)
    encoder = run_node(env.n.JoVATextEncoderLoader, model=handle, encoder=env.core("text.demo").DemoTextEncoder.name)[0]
    assert (encoder.text_dim, encoder.text_len) == (handle.config.text_dim, handle.config.text_len)

    (env.base_dir / "models" / "vae" / "v1-16.pth").write_bytes(b"")
    with pytest.raises(ValueError, match="vocoder"):
        env.n.JoVAAudioCodecLoader.execute(vae_name="v1-16.pth", vocoder_name=loaders.NO_VOCODER)


# -- text ----------------------------------------------------------------------------------


class FakeClip:
    """ComfyUI's CLIP API surface the node uses: tokenize -> encode_from_tokens_scheduled."""

    def __init__(self):
        self.texts = []

    def tokenize(self, text):
        self.texts.append(text)
        return {"tokens": text}

    def encode_from_tokens_scheduled(self, tokens):
        return [[torch.full((1, 7, 32), float(len(tokens["tokens"]))), {"pooled_output": None}]]


def test_text_encode_assembles_jova_prompt_for_core_clip(env):
    clip = FakeClip()
    out = run_node(env.n.JoVATextEncode, clip=clip, video_caption=" A man\n talks. ", audio_caption="Male voice.",
                   transcript="Hello there")
    conditioning, prompt = out.args
    assert clip.texts == [prompt]
    assert prompt == "<Video Caption>: A man talks. <Audio Caption>: Male voice. <Transcript>: Hello there"
    # The demo encoder's own parser reads the three fields back.
    sections = env.core("text.prompt").split_prompt(prompt)
    assert sections == {"Video Caption": "A man talks.", "Audio Caption": "Male voice.", "Transcript": "Hello there"}
    assert conditioning[0][0].shape == (1, 7, 32)

    no_speech = run_node(env.n.JoVATextEncode, clip=clip, video_caption="Rain on a window.",
                         audio_caption="Rain.", transcript="  ")[1]
    assert "<Transcript>" not in no_speech
    assert run_node(env.n.JoVATextEncode, clip=clip, video_caption="", audio_caption="", transcript="")[1] == ""


def test_text_encode_with_demo_encoder_and_bad_inputs(env):
    handle = tiny_handle(env)
    encoder = demo_text(env, handle.transformer)
    conditioning, prompt = run_node(env.n.JoVATextEncode, text_encoder=encoder, video_caption="a face",
                                    audio_caption="a voice", transcript="ba ma").args
    assert torch.equal(conditioning[0][0], encoder([prompt]))
    with pytest.raises(ValueError, match="exactly one"):
        env.n.JoVATextEncode.execute(video_caption="a", audio_caption="", transcript="")
    with pytest.raises(ValueError, match="exactly one"):
        env.n.JoVATextEncode.execute(clip=FakeClip(), text_encoder=encoder, video_caption="a", audio_caption="",
                                     transcript="")
    with pytest.raises(ValueError, match="section tag"):
        env.n.JoVATextEncode.execute(clip=FakeClip(), video_caption="x <Transcript>: y", audio_caption="",
                                     transcript="")


# -- latents -------------------------------------------------------------------------------


def test_empty_latent_rounds_and_matches_the_codecs(env):
    handle = tiny_handle(env)
    out = run_node(env.n.JoVAEmptyLatent, model=handle, width=130, height=70, seconds=1.0, fps=8.0, batch_size=2)
    latent, info = out.args
    assert (latent["jova_width"], latent["jova_height"], latent["jova_frames"]) == (128, 64, 5)
    assert "130x70 rounded to 128x64" in info and "5 frames" in info and out.ui.value == info
    demo = env.core("codecs.demo")
    video_codec, audio_codec = demo.DemoVideoCodec(), demo.DemoAudioCodec()
    # The codecs make exactly these shapes from a clip of this size and length.
    assert latent["samples"].shape == (2, *video_codec.encode(torch.rand(1, 5, 64, 128, 3)).shape[1:])
    seconds = 5 / 8.0
    wave = torch.randn(1, 1, round(seconds * audio_codec.sample_rate)) * 0.1
    assert latent["jova_audio"].shape == (2, *audio_codec.encode(wave, audio_codec.sample_rate).shape[1:])


# -- sampling ------------------------------------------------------------------------------


def test_sampler_matches_jova_core_and_reports_progress(env):
    handle = tiny_handle(env)
    encoder = demo_text(env, handle.transformer)
    positive, negative = encode(env, encoder), encode(env, encoder, "", "", "")
    latent = empty_latent(env, handle)
    out = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=negative, latent=latent,
                   **SAMPLER_DEFAULTS)[0]
    direct_video, direct_audio = env.core("sampling").sample(
        handle.transformer, text=positive[0][0], negative_video=negative[0][0], mode="t2va",
        video_shape=tuple(latent["samples"].shape), audio_shape=tuple(latent["jova_audio"].shape),
        steps=3, sampler="euler", shift=3.0, cfg_video=2.0, cfg_audio=1.5, seed=7, fps=8.0)
    assert torch.equal(out["samples"], direct_video) and torch.equal(out["jova_audio"], direct_audio)
    assert out["jova_frames"] == latent["jova_frames"] and not out["jova_video_absent"]

    progress = env.comfy.utils.progress
    assert [(done, total) for done, total, _ in progress] == [(1, 3), (2, 3), (3, 3)]
    kind, image, size = progress[-1][2]
    assert kind == "JPEG" and image.size == (64, 64) and size > 0
    assert env.comfy.model_management.loaded == [(handle.patcher, True)]

    again = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=negative, latent=latent,
                     **SAMPLER_DEFAULTS)[0]
    other = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=negative, latent=latent,
                     **{**SAMPLER_DEFAULTS, "seed": 8})[0]
    assert torch.equal(again["samples"], out["samples"]) and not torch.equal(other["samples"], out["samples"])


def test_sampler_stops_when_comfyui_cancels(env):
    handle = tiny_handle(env)
    encoder = demo_text(env, handle.transformer)
    positive = encode(env, encoder)
    env.comfy.model_management.interrupt_current_processing(True)
    with pytest.raises(env.comfy.model_management.InterruptProcessingException):
        env.n.JoVASampler.execute(model=handle, positive=positive, negative=positive,
                                  latent=empty_latent(env, handle), **{**SAMPLER_DEFAULTS, "steps": 5})
    assert env.comfy.utils.progress == []  # stopped at the first step's check


def test_block_swap_gives_the_same_result_and_cleans_up(env):
    whole = tiny_handle(env)
    swap = tiny_handle(env, offload="block swap", blocks_on_gpu=1)
    encoder = demo_text(env, whole.transformer)
    positive = encode(env, encoder)
    latent = empty_latent(env, whole)
    args = dict(positive=positive, negative=positive, latent=latent, **SAMPLER_DEFAULTS)
    a = run_node(env.n.JoVASampler, model=whole, **args)[0]
    b = run_node(env.n.JoVASampler, model=swap, **args)[0]
    assert torch.equal(a["samples"], b["samples"]) and torch.equal(a["jova_audio"], b["jova_audio"])
    for block in swap.transformer.blocks:
        assert not block._forward_pre_hooks and not block._forward_hooks
    # Resident: everything but the swapped blocks, plus room for one of them.
    swapper = env.core("offload").BlockSwap(swap.transformer, 0, "cpu", "cpu")
    size = env.core("offload").module_bytes
    blocks = swap.transformer.blocks
    assert swapper.resident_bytes() == size(swap.transformer) - size(blocks[0]) - size(blocks[1]) + max(size(b) for b in blocks)


def write_jova_lora(env, name, transformer, seed, layers=("blocks.0.video.self_attn.q", "blocks.1.audio.ffn.0")):
    """A small adapter in JoVA names (PEFT factor names, as the trainer writes) in models/loras."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(seed)
    modules = dict(transformer.named_modules())
    tensors = {}
    for layer in layers:
        out_f, in_f = modules[layer].weight.shape
        tensors[f"{layer}.lora_A.weight"] = torch.randn(2, in_f, generator=gen) * 0.3
        tensors[f"{layer}.lora_B.weight"] = torch.randn(out_f, 2, generator=gen) * 0.3
    folder = env.folder_paths.get_folder_paths("loras")[0]
    save_file(tensors, str(Path(folder) / name))
    return str(Path(folder) / name)


def test_lora_loader_chains_without_touching_the_input_model(env):
    handle = tiny_handle(env)
    swap = tiny_handle(env, offload="block swap", blocks_on_gpu=1)
    path_a = write_jova_lora(env, "a.safetensors", handle.transformer, seed=1)
    path_b = write_jova_lora(env, "b.safetensors", handle.transformer, seed=2)
    assert {"a.safetensors", "b.safetensors"} <= set(env.n.lora.list_files(env.n.lora.LORA_FOLDERS))
    encoder = demo_text(env, handle.transformer)
    positive, negative = encode(env, encoder), encode(env, encoder, "", "", "")
    latent = empty_latent(env, handle)
    args = dict(positive=positive, negative=negative, latent=latent, **SAMPLER_DEFAULTS)
    plain = run_node(env.n.JoVASampler, model=handle, **args)[0]

    def chain(base):
        once = run_node(env.n.JoVALoraLoader, model=base, lora_name="a.safetensors", strength=0.8, apply_to_audio=False)[0]
        return once, run_node(env.n.JoVALoraLoader, model=once, lora_name="b.safetensors", strength=-0.5,
                              apply_to_audio=False)[0]

    once, twice = chain(handle)
    assert twice.transformer is handle.transformer and len(once.loras) == 1 and len(twice.loras) == 2
    assert twice.patcher.model is handle.patcher.model and twice.patcher is not handle.patcher
    assert twice.patcher.size == handle.patcher.size + sum(a.nbytes() for a, _ in twice.loras)

    env.comfy.model_management.loaded.clear()
    out = run_node(env.n.JoVASampler, model=twice, **args)[0]
    assert env.comfy.model_management.loaded == [(twice.patcher, True)]
    apply_lora = env.core("lora").apply_lora
    applied = [apply_lora(handle.transformer, path_a, 0.8), apply_lora(handle.transformer, path_b, -0.5)]
    direct_video, direct_audio = env.core("sampling").sample(
        handle.transformer, text=positive[0][0], negative_video=negative[0][0], mode="t2va",
        video_shape=tuple(latent["samples"].shape), audio_shape=tuple(latent["jova_audio"].shape),
        steps=3, sampler="euler", shift=3.0, cfg_video=2.0, cfg_audio=1.5, seed=7, fps=8.0)
    for lora in applied:
        lora.remove()
    assert torch.equal(out["samples"], direct_video) and torch.equal(out["jova_audio"], direct_audio)
    assert not torch.equal(out["samples"], plain["samples"])

    # The input model samples as before; block swap carries the adapters with its blocks.
    again = run_node(env.n.JoVASampler, model=handle, **args)[0]
    assert torch.equal(again["samples"], plain["samples"]) and torch.equal(again["jova_audio"], plain["jova_audio"])
    swapped = run_node(env.n.JoVASampler, model=chain(swap)[1], **args)[0]
    assert torch.equal(swapped["samples"], out["samples"]) and torch.equal(swapped["jova_audio"], out["jova_audio"])
    for model in (handle.transformer, swap.transformer):
        assert not any(m._forward_hooks for m in model.modules())
        assert not any(".lora_" in n for n, _ in model.named_buffers())

    write_jova_lora(env, "other.safetensors", handle.transformer, seed=3, layers=("blocks.0.video.self_attn.q",))
    from safetensors.torch import load_file, save_file

    other = Path(env.folder_paths.get_folder_paths("loras")[0]) / "other.safetensors"
    tensors = {k.replace("blocks.0.video.self_attn.q", "blocks.0.self_attn.q_img"): v for k, v in load_file(str(other)).items()}
    save_file(tensors, str(other))
    with pytest.raises(ValueError, match="match no layer.*q_img"):
        env.n.JoVALoraLoader.execute(model=handle, lora_name="other.safetensors", strength=1.0, apply_to_audio=False)


def test_audio_driven_and_image_driven_modes(env):
    handle = tiny_handle(env)
    encoder = demo_text(env, handle.transformer)
    positive = encode(env, encoder)
    latent = empty_latent(env, handle, seconds=0.6, fps=8.0)
    demo = env.core("codecs.demo")
    audio_codec, video_codec = demo.DemoAudioCodec(), demo.DemoVideoCodec()
    seconds = latent["jova_frames"] / latent["jova_fps"]
    t = torch.arange(round(2.0 * 22050)) / 22050
    stereo = torch.stack([torch.sin(2 * math.pi * 220 * t), torch.sin(2 * math.pi * 330 * t)])[None] * 0.3
    audio = {"waveform": stereo, "sample_rate": 22050}

    out = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=positive, latent=latent,
                   audio=audio, audio_codec=audio_codec, **{**SAMPLER_DEFAULTS, "mode": "a2v"})
    given = audio_codec.encode(stereo[..., : round(seconds * 22050)], 22050)
    frames = latent["jova_audio"].shape[-1]
    # The driving audio is held as given; away from the clip's end (padding) it is the plain encoding.
    assert out[0]["jova_audio"].shape == latent["jova_audio"].shape
    assert torch.allclose(out[0]["jova_audio"][..., : frames - 2], given[..., : frames - 2], atol=1e-5)
    assert "cut to the clip" in out.ui.value

    image = torch.rand(1, 80, 96, 3)
    out = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=positive, latent=latent,
                   reference_image=image, video_codec=video_codec, **{**SAMPLER_DEFAULTS, "mode": "i2va"})[0]
    reference = video_codec.encode(env.core("fit").fit_frames(image, 64, 64)[None])
    assert torch.allclose(out["samples"][:, :, :1], reference, atol=1e-5)

    with pytest.raises(ValueError, match="'audio' and 'audio_codec'"):
        env.n.JoVASampler.execute(model=handle, positive=positive, negative=positive, latent=latent,
                                  **{**SAMPLER_DEFAULTS, "mode": "a2v"})

    # Two passes: i2va makes sound and video, then a2v regenerates the video to that sound.
    first = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=positive, latent=latent,
                     reference_image=image, video_codec=video_codec, **{**SAMPLER_DEFAULTS, "mode": "i2va"})[0]
    second = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=positive, latent=first,
                      reference_image=image, video_codec=video_codec, **{**SAMPLER_DEFAULTS, "mode": "a2v", "seed": 7})[0]
    assert torch.equal(second["jova_audio"], first["jova_audio"]) and second["jova_audio_sampled"]
    with torch.no_grad():
        direct = env.core("sampling").sample(
            handle.transformer, text=positive[0][0], negative_video=positive[0][0], mode="a2v",
            video_shape=tuple(latent["samples"].shape), audio_latents=first["jova_audio"], reference=reference,
            steps=SAMPLER_DEFAULTS["steps"], sampler=SAMPLER_DEFAULTS["sampler"], shift=SAMPLER_DEFAULTS["shift"],
            cfg_video=SAMPLER_DEFAULTS["cfg_video"], cfg_audio=SAMPLER_DEFAULTS["cfg_audio"], seed=7, fps=latent["jova_fps"],
        )[0]
    assert torch.allclose(second["samples"], direct, atol=1e-6)
    with pytest.raises(ValueError, match="video codec"):
        env.n.JoVASampler.execute(model=handle, positive=positive, negative=positive, latent=latent,
                                  reference_image=image, **{**SAMPLER_DEFAULTS, "mode": "i2va"})


def test_single_modality_and_video_to_audio_modes(env):
    handle = tiny_handle(env)
    positive = encode(env, demo_text(env, handle.transformer))
    latent = empty_latent(env, handle)
    one_step = {**SAMPLER_DEFAULTS, "steps": 1}
    t2a = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=positive, latent=latent,
                   **{**one_step, "mode": "t2a"})[0]
    assert t2a["jova_video_absent"] and not t2a["jova_audio_absent"]
    assert torch.equal(t2a["samples"], latent["samples"]) and not torch.equal(t2a["jova_audio"], latent["jova_audio"])

    video_codec = env.core("codecs.demo").DemoVideoCodec()
    frames = torch.rand(latent["jova_frames"] + 3, 64, 64, 3)  # longer than the clip: cut to it
    v2a = run_node(env.n.JoVASampler, model=handle, positive=positive, negative=positive, latent=latent,
                   video=frames, video_codec=video_codec, **{**one_step, "mode": "v2a"})[0]
    assert torch.equal(v2a["samples"], video_codec.encode(frames[None, : latent["jova_frames"]]))
    with pytest.raises(ValueError, match="frames"):
        env.n.JoVASampler.execute(model=handle, positive=positive, negative=positive, latent=latent,
                                  video=frames[:2], video_codec=video_codec, **{**one_step, "mode": "v2a"})


def test_fit_frames_crops_to_aspect_then_resizes(env):
    image = torch.zeros(1, 100, 200, 3)
    image[:, :, 50:150] = 1.0  # a white centre square of the wide image
    out = env.core("fit").fit_frames(image, 32, 32)
    assert out.shape == (1, 32, 32, 3) and torch.allclose(out, torch.ones_like(out))


def test_demo_graph_reproduces_jova_core_demo(env):
    """The CPU-demo workflow's node graph gives exactly what `python -m jova_core demo` gives."""
    n, demo = env.n, env.core("demo")
    settings = demo.load_demo_settings()
    model = run_node(n.JoVAModelLoader, model_name=n.loaders.DEMO_MODEL, weight_dtype="fp32", attention="sdpa",
                     offload="whole model", blocks_on_gpu=0)[0]
    encoder = run_node(n.JoVATextEncoderLoader, model=model, encoder=env.core("text.demo").DemoTextEncoder.name)[0]
    positive = run_node(n.JoVATextEncode, text_encoder=encoder, video_caption=settings.video_caption,
                        audio_caption=settings.audio_caption.replace("{syllables}", "2"), transcript="ba ma")[0]
    negative = encode(env, encoder, "", "", "")
    latent = run_node(n.JoVAEmptyLatent, model=model, width=settings.width, height=settings.height, seconds=2.05,
                      fps=settings.fps, batch_size=1)[0]
    reference = run_node(n.JoVADemoReferenceImage)[0]
    video_codec = run_node(n.JoVAVideoCodecLoader, codec_name=n.loaders.DEMO_CODEC)[0]
    audio_codec = run_node(n.JoVAAudioCodecLoader, vae_name=n.loaders.DEMO_CODEC, vocoder_name=n.loaders.NO_VOCODER)[0]
    passes = ["i2va", "a2v"] if settings.audio_driven_pass else ["i2va"]  # as workflows/jova_cpu_demo.json chains them
    out = latent
    for mode in passes:
        out = run_node(n.JoVASampler, model=model, positive=positive, negative=negative, latent=out, seed=3, steps=2,
                       sampler=settings.sampler, shift=settings.shift, cfg_video=settings.cfg_video,
                       cfg_audio=settings.cfg_audio, mode=mode, reference_image=reference, video_codec=video_codec)[0]
    images, audio, fps = run_node(n.JoVADecode, latent=out, audio_codec=audio_codec, video_codec=video_codec,
                                  tiled=False).args
    clip = demo.generate_demo("ba ma", seed=3, steps=2, batch_guidance=True)  # the sampler node's default
    assert fps == clip.fps and images.shape == clip.frames.shape
    assert torch.allclose(images, clip.frames, atol=1e-5)
    assert torch.allclose(audio["waveform"][0], clip.waveform[..., : audio["waveform"].shape[-1]], atol=1e-5)


# -- decoding and muxing --------------------------------------------------------------------


def test_decode_with_demo_codecs_equals_the_codecs(env):
    handle = tiny_handle(env)
    latent = dict(empty_latent(env, handle, seconds=0.3, fps=16.0))
    latent["samples"] = torch.randn_like(latent["samples"])
    latent["jova_audio"] = torch.randn_like(latent["jova_audio"])
    demo = env.core("codecs.demo")
    video_codec, audio_codec = demo.DemoVideoCodec(), demo.DemoAudioCodec()
    images, audio, fps = run_node(env.n.JoVADecode, latent=latent, audio_codec=audio_codec, video_codec=video_codec,
                                  tiled=False).args
    assert fps == 16.0 and images.shape == (5, 64, 64, 3)
    assert torch.allclose(images, video_codec.decode(latent["samples"])[0])
    expected = audio_codec.decode(latent["jova_audio"])[..., : round(5 / 16.0 * 16000)]
    assert audio["sample_rate"] == 16000 and torch.allclose(audio["waveform"], expected)

    silent = run_node(env.n.JoVADecode, latent={**latent, "jova_audio_absent": True}, video_codec=video_codec,
                      tiled=False)[1]
    assert silent["waveform"].abs().max() == 0 and silent["waveform"].shape[-1] == 5000
    black = run_node(env.n.JoVADecode, latent={**latent, "jova_video_absent": True}, audio_codec=audio_codec,
                     tiled=False)[0]
    assert black.shape == (5, 64, 64, 3) and black.max() == 0
    with pytest.raises(ValueError, match="video codec"):
        env.n.JoVADecode.execute(latent=latent, audio_codec=audio_codec)
    with pytest.raises(ValueError, match="audio_codec"):
        env.n.JoVADecode.execute(latent=latent, video_codec=video_codec)


class FakeCoreVAE:
    """ComfyUI's VAE object surface: encode(frames [T,H,W,3]) -> raw [1,C,F,h,w], decode, decode_tiled."""

    def __init__(self, channels=16):
        self.latent_channels = channels
        self.calls = []

    def temporal_compression_decode(self):
        return 4

    def spacial_compression_decode(self):
        return 8

    def encode(self, frames):
        t, h, w, _ = frames.shape
        raw = torch.arange(self.latent_channels, dtype=torch.float32).view(1, -1, 1, 1, 1)
        return raw.expand(1, self.latent_channels, 1 + (t - 1) // 4, h // 8, w // 8).clone()

    def decode(self, z):
        self.calls.append(("decode", z.clone()))
        b, _, f, h, w = z.shape
        return torch.full((b, 1 + (f - 1) * 4, h * 8, w * 8, 3), 0.5)

    def decode_tiled(self, z, tile_x=None, tile_y=None, overlap=None, tile_t=None, overlap_t=None):
        self.calls.append(("decode_tiled", (tile_x, tile_y, overlap)))
        return self.decode(z).reshape(-1, z.shape[3] * 8, z.shape[4] * 8, 3)


def test_core_vae_is_wrapped_with_wan_normalisation(env):
    import inspect

    from diffusers import AutoencoderKLWan

    # The oracle: diffusers' own defaults for the Wan2.1 VAE's latent statistics.
    signature = inspect.signature(AutoencoderKLWan.__init__).parameters
    mean = torch.tensor(signature["latents_mean"].default).view(1, -1, 1, 1, 1)
    std = torch.tensor(signature["latents_std"].default).view(1, -1, 1, 1, 1)
    vae = FakeCoreVAE()
    codec = env.n.codecs.CoreVAEVideoCodec(vae)
    frames = torch.rand(1, 5, 32, 48, 3)
    latents = codec.encode(frames)
    assert torch.allclose(latents, (vae.encode(frames[0]) - mean) / std, atol=1e-6)
    images = codec.decode(latents, tiled=False)
    assert images.shape == (1, 5, 32, 48, 3)
    assert torch.allclose(vae.calls[-1][1], vae.encode(frames[0]), atol=1e-5)  # raw latents handed back
    codec.decode(latents, tiled=True)
    assert vae.calls[-2] == ("decode_tiled", (64, 64, 8))
    with pytest.raises(ValueError, match="Wan2.1 VAE"):
        env.n.codecs.CoreVAEVideoCodec(FakeCoreVAE(channels=48))


def _probe(path: Path) -> str:
    import imageio_ffmpeg

    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True)
    return done.stderr


def test_mux_builds_video_and_saves_mp4_without_overwriting(env):
    images = torch.rand(9, 32, 48, 3)
    t = torch.arange(2 * 16000) / 16000
    audio = {"waveform": (0.3 * torch.sin(2 * math.pi * 440 * t)).view(1, 1, -1), "sample_rate": 16000}
    out = run_node(env.n.JoVAMux, images=images, fps=8.0, audio=audio, save_mp4=True, filename_prefix="JoVA/test")
    components = out[0].get_components()
    assert components.frame_rate == 8 and components.audio["waveform"].shape[-1] == round(9 / 8 * 16000)
    first = env.base_dir / "output" / "JoVA" / "test_00001.mp4"
    assert out.ui.values == [{"filename": "test_00001.mp4", "subfolder": "JoVA", "type": "output"}]
    before = first.read_bytes()
    run_node(env.n.JoVAMux, images=images, fps=8.0, audio=audio, save_mp4=True, filename_prefix="JoVA/test")
    assert first.read_bytes() == before and (first.parent / "test_00002.mp4").exists()

    info = _probe(first)
    assert "Video: h264" in info and "Audio: aac" in info and "48x32" in info
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(first))
    meta = next(reader)
    assert meta["fps"] == 8.0 and sum(1 for _ in reader) == 9

    assert run_node(env.n.JoVAMux, images=images, fps=8.0, save_mp4=False, filename_prefix="JoVA/none").ui is None
    assert not list((env.base_dir / "output" / "JoVA").glob("none_*"))
    with pytest.raises(ValueError, match="inside the output folder"):
        env.n.JoVAMux.execute(images=images, fps=8.0, save_mp4=True, filename_prefix="../escape")


# -- mouth ---------------------------------------------------------------------------------


def test_mouth_preview_matches_training_masks_and_reports_missing_faces(env):
    from skimage.data import astronaut

    face = torch.from_numpy(astronaut()[:256:2, 128:384:2].copy()).float() / 255.0  # 128x128 crop, face centred
    face = torch.nn.functional.interpolate(face.permute(2, 0, 1)[None], size=(256, 256), mode="bilinear")[0]
    face = face.permute(1, 2, 0).clamp(0, 1)
    frames = torch.cat([face.expand(5, -1, -1, -1), torch.full((2, 256, 256, 3), 0.5)])
    overlay, mask, latent_mask, report = run_node(env.n.JoVAMouthMaskPreview, images=frames, margin=0.25,
                                                  shape="box", faces="largest", face_model="built-in").args
    assert report == "no face in 2 of 7 frames: 5-6"
    mouth = env.core("mouth")
    # The training path (jova_core.train.encode): landmarks -> pixel box -> latent grid.
    landmarks = mouth.detect_face_landmarks(frames)
    expected = mouth.latent_mask(mouth.pixel_mask(landmarks.tracks[0], 256, 256, margin=0.25))
    assert torch.equal(latent_mask, expected) and latent_mask.shape == (2, 32, 32)
    assert mask.shape == (7, 256, 256) and mask[:5].sum() > 0 and mask[5:].sum() == 0
    # Tinted (red: green drops) on the up-weighted latent cells of frame 0 (pixel frame 0 =
    # latent frame 0); untouched away from them (the drawn box and lips lie on the cells).
    cells = latent_mask[0].repeat_interleave(8, 0).repeat_interleave(8, 1)
    near = torch.nn.functional.max_pool2d(cells[None, None], 33, stride=1, padding=16)[0, 0].bool()
    less_green = frames[0, ..., 1] - overlay[0, ..., 1]
    assert less_green[cells.bool()].mean() > 0.1 and less_green[~near].abs().max() < 0.01
    with pytest.raises(ValueError, match="multiples of 8"):
        env.n.JoVAMouthMaskPreview.execute(images=frames[:, :250, :250], margin=0.25, shape="box", faces="largest")


def test_mouth_preview_face_models_come_from_models_jova(env):
    """'built-in' (the shipped model) first, then every .task file in models/jova; a chosen
    file that is gone gets a message naming the folder to put it in."""
    from skimage.data import astronaut

    folder = env.base_dir / "models" / "jova"
    folder.mkdir(exist_ok=True)
    shipped = env.core("mouth.face_model").SHIPPED
    (folder / "my_face_landmarker.task").write_bytes(shipped.read_bytes())
    (folder / "notes.txt").write_text("not a model")
    options = {i.id: i for i in env.n.JoVAMouthMaskPreview.GET_SCHEMA().inputs}["face_model"].options
    assert options == ["built-in", "my_face_landmarker.task"]

    face = torch.from_numpy(astronaut()[:256:2, 128:384:2].copy()).float()[None] / 255.0  # 128x128, face centred
    kwargs = dict(images=face, margin=0.25, shape="box", faces="largest")
    built_in = run_node(env.n.JoVAMouthMaskPreview, face_model="built-in", **kwargs).args
    own = run_node(env.n.JoVAMouthMaskPreview, face_model="my_face_landmarker.task", **kwargs).args
    assert own[3] == built_in[3] == "a face in all 1 frames"
    assert torch.equal(own[2], built_in[2])  # same networks: the same latent-grid mask
    (folder / "my_face_landmarker.task").unlink()
    with pytest.raises(FileNotFoundError, match=f"not in models/jova; put the file in {folder}"):
        env.n.JoVAMouthMaskPreview.execute(face_model="my_face_landmarker.task", **kwargs)
