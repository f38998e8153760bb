"""Codec speed and memory on CPU (random weights at real size; no real files needed).

(i)   MMAudio 16k VAE decode + 16 kHz BigVGAN: seconds of audio decoded per second of wall
      time (and the same for encode), real-size modules built through the loaders;
(ii)  Wan2.1 VAE decode at real size: peak resident memory of a tiled vs an untiled decode
      of the same latents, each in its own process (peak RSS above the loaded model);
(iii) demo codecs: wall time to encode + decode a 3 s 128x128 clip at 24 fps and 3 s of audio.

    python bench/codecs.py [--audio-seconds 4] [--frames 5 --size 256 --tile 128]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def random_state_dict(manifest: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the exact keys/shapes of a real checkpoint."""
    g = torch.Generator().manual_seed(seed)
    from manifests import manifest as read_manifest

    keys = read_manifest(manifest)["keys"]
    out = {}
    for key, (shape, _) in keys.items():
        tensor = torch.randn(shape, generator=g)
        # Magnitudes (weight-norm g, data_std) must be positive to behave like real ones.
        out[key] = tensor.abs() + 0.5 if key.endswith(("original0", "weight_g", "data_std")) else tensor
    return out


def bench_audio(seconds: float) -> None:
    from jova_core.codecs.bigvgan import vocode, vocoder_from_state_dict
    from jova_core.codecs.mmaudio import MMAudioCodec
    from jova_core.codecs.mmaudio_vae import mmaudio_vae_from_state_dict
    from jova_core.codecs.signals import syllables

    vae, mel = mmaudio_vae_from_state_dict(random_state_dict("mmaudio_vae_16k"), "random 16k VAE")
    vocoder = vocoder_from_state_dict(random_state_dict("bigvgan_16k_mmaudio"), "random 16k BigVGAN", 16_000)
    codec = MMAudioCodec(vae, vocoder, mel)
    wave = syllables(seconds)
    codec.decode(codec.encode(wave, 16_000))  # warm-up at the same length (oneDNN builds kernels per shape)
    start = time.perf_counter()
    latents = codec.encode(wave, 16_000)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(latents)
    decode_s = time.perf_counter() - start
    with torch.no_grad():
        start = time.perf_counter()
        log_mel = codec.vae.vae.decode(latents)
        vae_s = time.perf_counter() - start
        start = time.perf_counter()
        vocode(codec.vocoder, log_mel)
        vocoder_s = time.perf_counter() - start
    audio_s = decoded.shape[-1] / codec.sample_rate
    print(f"[audio] MMAudio 16k VAE + BigVGAN 16k, real size, {torch.get_num_threads()} threads, {audio_s:.2f} s of audio")
    print(f"[audio] decode (VAE + vocoder): {audio_s / decode_s:.2f} s of audio per wall second ({decode_s:.2f} s)")
    print(f"[audio]   of which VAE decode {vae_s:.2f} s, vocoder {vocoder_s:.2f} s (timed again separately)")
    print(f"[audio] encode (mel + VAE):     {seconds / encode_s:.2f} s of audio per wall second ({encode_s:.2f} s)")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def wan_decode_child(frames: int, size: int, tile: int, tiled: bool) -> None:
    """Runs in its own process: decode once, print peak RSS above the loaded model (MiB)."""
    from diffusers import AutoencoderKLWan

    from jova_core.codecs.wan_vae import WanVideoCodec, wan_vae_config

    torch.manual_seed(0)
    cfg = {k: v for k, v in wan_vae_config().items() if not k.startswith("_")}
    codec = WanVideoCodec(AutoencoderKLWan(**cfg).eval())
    codec.configure_tiling(tile_pixels=tile, overlap_pixels=tile // 4)
    latents = torch.randn(1, *codec.latent_shape(frames, size, size))
    baseline = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter to the current RSS
    start = time.perf_counter()
    out = codec.decode(latents, tiled=tiled)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    print(json.dumps({"peak_mib": (peak - baseline) / 1024, "seconds": seconds, "shape": list(out.shape)}))


def bench_wan(frames: int, size: int, tile: int) -> None:
    results = {}
    for tiled in (False, True):
        cmd = [sys.executable, __file__, "--wan-child", str(int(tiled)), "--frames", str(frames),
               "--size", str(size), "--tile", str(tile)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[tiled] = json.loads(out)
    print(f"[video] Wan2.1 VAE decode, real size, {frames} frames at {size}x{size} (tiles {tile}px, overlap {tile // 4}px)")
    for tiled, r in results.items():
        print(f"[video] {'tiled  ' if tiled else 'untiled'}: peak RSS above model {r['peak_mib']:.0f} MiB, {r['seconds']:.1f} s")
    print(f"[video] tiled / untiled peak memory: {results[True]['peak_mib'] / results[False]['peak_mib']:.2f}")


def bench_demo() -> None:
    from jova_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
    from jova_core.codecs.signals import syllables

    video, audio = DemoVideoCodec(), DemoAudioCodec()
    frames = torch.rand(1, 73, 128, 128, 3)
    wave = syllables(3.0)
    audio.decode(audio.encode(wave[:, :8000], 16_000))  # warm-up (first FFT plans, mel inverse)
    start = time.perf_counter()
    video.decode(video.encode(frames))
    video_s = time.perf_counter() - start
    start = time.perf_counter()
    audio.decode(audio.encode(wave, 16_000))
    audio_s = time.perf_counter() - start
    print(f"[demo] video 73 frames 128x128 encode+decode: {video_s:.2f} s; audio 3 s encode+decode: {audio_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-seconds", type=float, default=4.0)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--wan-child", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wan_child is not None:
        wan_decode_child(args.frames, args.size, args.tile, bool(args.wan_child))
        return
    bench_demo()
    bench_audio(args.audio_seconds)
    if not args.skip_video:
        bench_wan(args.frames, args.size, args.tile)


if __name__ == "__main__":
    main()
