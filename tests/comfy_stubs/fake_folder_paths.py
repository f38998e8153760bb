"""Stand-in for ComfyUI's ``folder_paths`` rooted in a test's temporary folder (``configure``)."""

from __future__ import annotations

import os

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
models_dir = ""
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}
_output_directory = ""
_temp_directory = ""
_input_directory = ""


def configure(base_dir: str) -> None:
    global models_dir, _output_directory, _temp_directory, _input_directory
    models_dir = os.path.join(base_dir, "models")
    _output_directory = os.path.join(base_dir, "output")
    _temp_directory = os.path.join(base_dir, "temp")
    _input_directory = os.path.join(base_dir, "input")
    folder_names_and_paths.clear()
    for name in ("diffusion_models", "vae", "text_encoders", "loras"):
        folder_names_and_paths[name] = ([os.path.join(models_dir, name)], set(supported_pt_extensions))
    for path in (_output_directory, _temp_directory, _input_directory,
                 *(p for paths, _ in folder_names_and_paths.values() for p in paths)):
        os.makedirs(path, exist_ok=True)


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    if folder_name in folder_names_and_paths:
        paths = folder_names_and_paths[folder_name][0]
        if full_folder_path not in paths:
            paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)
    else:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())


def get_folder_paths(folder_name: str) -> list[str]:
    return folder_names_and_paths[folder_name][0][:]


def get_filename_list(folder_name: str) -> list[str]:
    paths, extensions = folder_names_and_paths[folder_name]
    found = set()
    for root in paths:
        if not os.path.isdir(root):
            continue
        for dirpath, _, files in os.walk(root):
            for f in files:
                if not extensions or os.path.splitext(f)[1].lower() in extensions:
                    found.add(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(found)


def get_full_path(folder_name: str, filename: str) -> str | None:
    if folder_name not in folder_names_and_paths:
        return None
    for root in folder_names_and_paths[folder_name][0]:
        path = os.path.join(root, filename)
        if os.path.isfile(path):
            return path
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    path = get_full_path(folder_name, filename)
    if path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return path


def get_output_directory() -> str:
    return _output_directory


def get_temp_directory() -> str:
    return _temp_directory


def get_input_directory() -> str:
    return _input_directory
