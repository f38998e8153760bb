"""Where the pack looks for model files, on top of ComfyUI's standard folders.

Transformers: models/jova, then models/diffusion_models. Audio codecs (MMAudio VAE +
BigVGAN, AudioLDM2 VAE + vocoder, Stable Audio Open VAE): models/jova_audio, then
models/vae. Face landmark models (mediapipe face_landmarker.task, for the Mouth Mask
Preview): models/jova.
"""

from __future__ import annotations

import os

import folder_paths

MODEL_FOLDERS = ("jova", "diffusion_models")
AUDIO_CODEC_FOLDERS = ("jova_audio", "vae")
VIDEO_CODEC_FOLDERS = ("vae",)
TEXT_ENCODER_FOLDERS = ("text_encoders",)
FACE_MODEL_FOLDERS = ("jova",)
WEIGHT_EXTENSIONS = (".safetensors", ".sft", ".pt", ".pth", ".bin", ".ckpt")
FACE_MODEL_EXTENSIONS = (".task",)


def register_model_folders() -> None:
    for name in ("jova", "jova_audio"):
        folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))


def list_files(folders: tuple[str, ...], extensions: tuple[str, ...] = WEIGHT_EXTENSIONS) -> list[str]:
    names = set()
    for folder in folders:
        names.update(f for f in folder_paths.get_filename_list(folder) if f.lower().endswith(extensions))
    return sorted(names)


def list_model_folders(folders: tuple[str, ...]) -> list[str]:
    """Sub-folders holding a transformers model (config.json), for models downloaded as folders."""
    names = set()
    for folder in folders:
        for base in folder_paths.get_folder_paths(folder):
            if os.path.isdir(base):
                names.update(n for n in os.listdir(base) if os.path.isfile(os.path.join(base, n, "config.json")))
    return sorted(names)


def resolve_model_folder(folders: tuple[str, ...], name: str) -> str:
    for folder in folders:
        for base in folder_paths.get_folder_paths(folder):
            if os.path.isfile(os.path.join(base, name, "config.json")):
                return os.path.join(base, name)
    raise FileNotFoundError(f"no model folder {name!r} with a config.json in {folder_names(folders)}; "
                            "put the downloaded folder there and refresh the node list")


def folder_names(folders: tuple[str, ...]) -> str:
    """("jova", "diffusion_models") -> "models/jova or models/diffusion_models"."""
    return " or ".join(f"models/{f}" for f in folders)


def resolve(folders: tuple[str, ...], name: str) -> str:
    for folder in folders:
        path = folder_paths.get_full_path(folder, name)
        if path is not None:
            return path
    first = folder_paths.get_folder_paths(folders[0])[0]
    raise FileNotFoundError(f"{name!r} is not in {folder_names(folders)}; put the file in {first} and refresh the node list")


register_model_folders()
