"""Bad inputs tried as a new user would: each gets a one-line message (no traceback), loses
nothing and never silently does the wrong thing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from jova_core.cli import main


def one_error_line(capsys) -> str:
    """The CLI's stderr, checked to be one line and no traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# -- seeds ------------------------------------------------------------------------------


def _mt19937_init_by_array(key: list[int]) -> np.ndarray:
    """The reference seeding of mt19937ar.c (Matsumoto & Nishimura), restated in Python."""
    mask = 0xFFFFFFFF
    mt = [19650218]
    for i in range(1, 624):
        mt.append((1812433253 * (mt[-1] ^ (mt[-1] >> 30)) + i) & mask)
    i, j = 1, 0
    for _ in range(max(624, len(key))):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525)) + key[j] + j) & mask
        i, j = i + 1, j + 1
        if i >= 624:
            mt[0], i = mt[623], 1
        if j >= len(key):
            j = 0
    for _ in range(623):
        mt[i] = ((mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941)) - i) & mask
        i += 1
        if i >= 624:
            mt[0], i = mt[623], 1
    mt[0] = 0x80000000
    return np.array(mt, dtype=np.uint64)


def _state_words(generator: torch.Generator) -> np.ndarray:
    return np.frombuffer(generator.get_state().numpy().tobytes()[24 : 24 + 624 * 8], dtype="<u8")


def test_seeds_below_2_32_keep_their_noise_and_every_64_bit_seed_is_its_own():
    from jova_core.sampling import seeded_generator

    for seed in (0, 7, 2**32 - 1):
        ours = torch.randn(64, generator=seeded_generator(seed))
        assert torch.equal(ours, torch.randn(64, generator=torch.Generator().manual_seed(seed)))
    # torch alone gives seeds 2**32 apart the same noise; ours differ.
    assert torch.equal(torch.randn(8, generator=torch.Generator().manual_seed(5)),
                       torch.randn(8, generator=torch.Generator().manual_seed(5 + 2**32)))
    draws = {seed: torch.randn(64, generator=seeded_generator(seed)) for seed in (5, 5 + 2**32, 5 + 2**33, 2**64 - 1)}
    for a in draws:
        for b in draws:
            assert a == b or not torch.equal(draws[a], draws[b]), (a, b)
    assert torch.equal(draws[2**64 - 1], torch.randn(64, generator=seeded_generator(2**64 - 1)))  # reproducible
    # Above 2**32 the twister's state is the reference init_by_array of the two halves.
    seed = 0x1234_5678_9ABC_DEF0
    assert np.array_equal(_state_words(seeded_generator(seed)), _mt19937_init_by_array([0x9ABC_DEF0, 0x1234_5678]))
    # ... written where torch keeps it: torch's own seeding read back the same way is init_genrand.
    words = [12345]
    for i in range(1, 624):
        words.append((1812433253 * (words[-1] ^ (words[-1] >> 30)) + i) & 0xFFFFFFFF)
    assert np.array_equal(_state_words(torch.Generator().manual_seed(12345)), np.array(words, dtype=np.uint64))


@pytest.mark.parametrize("seed", [2**64, -1, 1.5, True])
def test_seeds_outside_0_to_2_64_are_refused(seed):
    from jova_core.sampling import seeded_generator

    with pytest.raises(ValueError, match="seed must be"):
        seeded_generator(seed)


def test_sample_gives_seeds_2_32_apart_different_noise():
    from jova_core.config import preset_config
    from jova_core.sampling import sample

    class Still:  # velocity 0: the result is the starting noise
        config = preset_config("tiny")

        def __call__(self, video, audio, **_):
            return torch.zeros_like(video), torch.zeros_like(audio)

    run = lambda seed: sample(Still(), text=torch.zeros(1, 3, 16), mode="t2va", video_shape=(1, 16, 2, 4, 4),  # noqa: E731
                              audio_shape=(1, 20, 8), steps=1, sampler="euler", cfg_video=1, cfg_audio=1, seed=seed)
    video, audio = run(3)
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(video, torch.randn(1, 16, 2, 4, 4, generator=generator))
    assert torch.equal(audio, torch.randn(1, 20, 8, generator=generator))
    far_video, far_audio = run(3 + 2**32)
    assert not torch.equal(video, far_video) and not torch.equal(audio, far_audio)
    run(2**64 - 1)
    with pytest.raises(ValueError, match="2\\^64"):
        run(2**64)


# -- the demo -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "--steps must be at least 1"),
        (["--steps", "-3"], "--steps must be at least 1"),
        (["--seed", str(2**64)], "seed must be from 0"),
        (["--seed", "-1"], "seed must be from 0"),
        (["--transcript", "你好"], "cannot say"),
        (["--transcript", "ba 🙂 ma"], "cannot say '🙂'"),
        (["--transcript", " ... "], "no syllables"),
        (["--out", "{tmp}/clip.wav"], "must end in .mp4"),
        (["--lip-sync-seeds", "0"], "--lip-sync-seeds must be at least 1"),
    ],
)
def test_demo_refuses_bad_arguments_before_generating(tmp_path, capsys, monkeypatch, args, message):
    from jova_core.demo import settings

    def no_model(*_, **__):
        raise AssertionError("the model was loaded for arguments that are refused")

    monkeypatch.setattr(settings, "load_demo_model", no_model)
    monkeypatch.setattr("jova_core.demo.generate.load_demo_model", no_model)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "clip.mp4")]
    assert main(["demo", *args]) == 1
    assert message in one_error_line(capsys)
    assert os.listdir(tmp_path) == []


def test_demo_transcript_check_keeps_what_the_demo_reads():
    from jova_core.text.demo import DemoTextEncoder, unreadable

    assert DemoTextEncoder.transcript_syllables("Ba, ma-da! pa?") == ["ba", "ma", "da", "pa"]
    assert unreadable("ba café 你 🙂 你") == ["é", "你", "🙂"]
    encoder = DemoTextEncoder(48, 64)
    encoder("<Video Caption>: a face <Audio Caption>: a voice <Transcript>: ba ma")  # readable: fine
    with pytest.raises(ValueError, match="cannot say"):
        encoder("<Video Caption>: a face <Audio Caption>: a voice <Transcript>: 你好")


def test_write_mp4_refuses_a_name_that_is_not_mp4(tmp_path):
    from jova_core.io import write_mp4

    with pytest.raises(ValueError, match="must end in .mp4"):
        write_mp4(str(tmp_path / "clip.wav"), np.zeros((2, 8, 8, 3), np.uint8), 24.0)
    assert os.listdir(tmp_path) == []
