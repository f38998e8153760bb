"""JoVA Mouth Mask Preview: where the mouth-area loss would weight a training clip.

The masks are made exactly as training makes them (face landmarks -> mouth box with a
margin -> pixel mask -> latent-grid mask). The overlay tints the latent-grid mask blown
back up to pixels, i.e. the cells the loss actually up-weights, not the finer pixel box.
"""

from __future__ import annotations

import comfy.model_management
import comfy.utils
import torch
from comfy_api.latest import io

from ..jova_core.geometry import WAN21_VAE
from .display import show_text
from .paths import FACE_MODEL_EXTENSIONS, FACE_MODEL_FOLDERS, list_files, resolve
from .types import CATEGORY

# The latent grid the mouth-area loss works on: Wan2.1's (and the demo codec's).
GRID = WAN21_VAE

DEFAULT_FPS = 25.0
# The face model the pack ships (jova_core/assets/face_landmarker.task): no download.
BUILT_IN_FACE_MODEL = "built-in"


def latent_mask_on_pixels(latent: torch.Tensor, frames: int) -> torch.Tensor:
    """[T_lat, h, w] -> [frames, h*8, w*8]: pixel frame 0 <- latent frame 0, frame t <- latent
    frame ceil(t / 4); frames past the last full group are not encoded, so get no weight."""
    index = GRID.latent_frame_of(torch.arange(frames))
    encoded = index < latent.shape[0]
    up = latent[index.clamp(max=latent.shape[0] - 1)] * encoded[:, None, None]
    return up.repeat_interleave(GRID.spatial_stride, 1).repeat_interleave(GRID.spatial_stride, 2)


class JoVAMouthMaskPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVAMouthMaskPreview",
            display_name="JoVA Mouth Mask Preview",
            category=CATEGORY,
            description=(
                "Shows the mouth region the mouth-area loss weights: overlay (latent-grid mask tinted red, "
                "lip landmarks green, mouth box yellow), the pixel mask, and the latent-grid mask. "
                "Frames without a face are listed."
            ),
            inputs=[
                io.Image.Input("images", optional=True, tooltip="Frames [T, H, W, 3]; H and W multiples of 8."),
                io.Video.Input("video", optional=True, tooltip="A core VIDEO instead of frames."),
                io.Float.Input("margin", default=0.25, min=0.0, max=2.0, step=0.05,
                               tooltip="Added around the lips on every side, as a fraction of mouth width (training uses 0.25)."),
                io.Combo.Input("shape", options=["box", "polygon"], default="box", tooltip="Training uses 'box'."),
                io.Combo.Input("faces", options=["largest", "all"], default="largest", tooltip="Training uses 'largest'."),
                io.Combo.Input("face_model", options=[BUILT_IN_FACE_MODEL] + list_files(FACE_MODEL_FOLDERS, FACE_MODEL_EXTENSIONS),
                               default=BUILT_IN_FACE_MODEL,
                               tooltip="Face landmark model: 'built-in' (shipped with the pack, what training uses) "
                                       "or a mediapipe face_landmarker.task placed in models/jova."),
            ],
            outputs=[io.Image.Output("overlay", tooltip="The frames with the weighted latent cells (red), lips (green) and mouth box (yellow)."),
                     io.Mask.Output("mask", tooltip="The pixel mouth mask per frame."),
                     io.Mask.Output("latent_mask", tooltip="The mask on the latent grid (1/8 size, 1 + (T-1)/4 frames): what the loss weights."),
                     io.String.Output("report", tooltip="Frames without a face (also shown on the node).")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, margin: float, shape: str, faces: str, face_model: str = BUILT_IN_FACE_MODEL, images=None,
                video=None) -> io.NodeOutput:
        if (images is None) == (video is None):
            raise ValueError("connect exactly one of 'images' or 'video'")
        model_path = None if face_model == BUILT_IN_FACE_MODEL else resolve(FACE_MODEL_FOLDERS, face_model)
        fps = DEFAULT_FPS
        if video is not None:
            components = video.get_components()
            images, fps = components.images, float(components.frame_rate)
        frames = images[..., :3].float().cpu()
        height, width = frames.shape[1:3]
        if height % GRID.spatial_stride or width % GRID.spatial_stride:
            raise ValueError(
                f"frames are {width}x{height}; the latent grid needs multiples of {GRID.spatial_stride} "
                "(resize or crop them as they would be for encoding)"
            )
        try:
            # Imported on use: mediapipe/OpenCV lack wheels on some Pythons, and the rest
            # of the pack must still load there.
            from ..jova_core.mouth import extract_mouth_masks, render_preview
        except ImportError as error:
            raise RuntimeError(
                f"the mouth mask preview needs mediapipe and OpenCV ({error}); install them with "
                "'pip install mediapipe' in ComfyUI's Python"
            ) from error
        bar = comfy.utils.ProgressBar(len(frames))

        def progress(done: int, total: int) -> None:
            comfy.model_management.throw_exception_if_processing_interrupted()
            bar.update_absolute(done, total)

        masks = extract_mouth_masks(frames, faces=faces, shape=shape, margin=margin, fps=fps, model_path=model_path,
                                    callback=progress)
        weighted = latent_mask_on_pixels(masks.latent, len(frames))
        preview = render_preview(frames, weighted, masks.landmarks.tracks, masks.boxes)
        overlay = torch.from_numpy(preview).float() / 255.0
        missing = masks.landmarks.missing_frames
        if not missing:
            report = f"a face in all {len(frames)} frames"
        else:
            report = f"no face in {len(missing)} of {len(frames)} frames: {_ranges(missing)}"
        return io.NodeOutput(overlay, masks.pixel, masks.latent, report, ui=show_text(cls, report))


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    spans, start = [], None
    for i, n in enumerate(indices):
        if start is None:
            start = n
        if i + 1 == len(indices) or indices[i + 1] != n + 1:
            spans.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(spans)
