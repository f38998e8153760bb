"""JoVA LoRA Loader: a LoRA from ComfyUI's loras folder on a JoVA model, at a strength."""

from __future__ import annotations

from comfy_api.latest import io

from ..jova_core.lora import read_lora
from .paths import list_files, resolve
from .types import CATEGORY, JoVAModel

LORA_FOLDERS = ("loras",)


class JoVALoraLoader(io.ComfyNode):
    FILE_FOLDERS = {"lora_name": LORA_FOLDERS}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JoVALoraLoader",
            display_name="JoVA LoRA Loader",
            category=CATEGORY,
            description=(
                "Applies a LoRA from models/loras at a strength, without changing the model's weights or "
                "writing files; chain several. Reads the JoVA trainer's lora.safetensors and Wan2.1 T2V LoRAs "
                "(kohya, diffusers/PEFT and ComfyUI layouts), which adapt the video branch. A LoRA whose "
                "layers this model lacks is refused."
            ),
            inputs=[
                JoVAModel.Input("model", tooltip="The JoVA model to adapt (from the JoVA Model Loader or another LoRA Loader)."),
                io.Combo.Input("lora_name", options=list_files(LORA_FOLDERS),
                               tooltip="A LoRA file in models/loras: the JoVA trainer's lora.safetensors or a Wan2.1 T2V LoRA."),
                io.Float.Input("strength", default=1.0, min=-10.0, max=10.0, step=0.01,
                               tooltip="1 applies the LoRA as trained; 0 leaves the model as it is; negative values push away from it."),
                io.Boolean.Input("apply_to_audio", default=False,
                                 tooltip="Also apply a Wan2.1 LoRA to the audio branch's copy of the Wan layers."),
            ],
            outputs=[JoVAModel.Output("model", tooltip="The same model sampling with this LoRA added (the input model is unchanged).")],
        )

    @classmethod
    def execute(cls, model, lora_name: str, strength: float, apply_to_audio: bool) -> io.NodeOutput:
        adapter = read_lora(resolve(LORA_FOLDERS, lora_name), model.transformer, apply_to_audio)
        return io.NodeOutput(model.with_lora(adapter, strength))
