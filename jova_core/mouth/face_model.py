"""The face landmark model the pack ships: ``jova_core/assets/face_landmarker.task``.

mediapipe >= 0.10.30 dropped the face mesh it carried inside the package; what is left,
the Tasks ``FaceLandmarker``, takes its networks from a ``.task`` file: a zip holding
``face_detector.tflite`` and ``face_landmarks_detector.tflite``. The shipped one is built
from the two Apache-2.0 networks inside the mediapipe 0.10.21 wheel (the short-range
BlazeFace detector and the 468-point face mesh that its legacy face mesh runs), so
both mediapipe lines find the same landmarks, and nothing is downloaded.

One change makes the old mesh network fit the Tasks graph: the graph always reads 478
points (the mesh plus 10 iris points) from the landmark tensor, and from the mesh's
468 * 3 values it would read 478 points of 2 values each, i.e. garbage, without an
error. A GATHER op appended to the network therefore outputs 478 * 3 values: the 468
mesh points, then 10 copies of eye-contour points standing in for the iris (this
network has none; the pack never reads them, and copies of points inside the mesh leave
the face rectangle that tracking takes from all 478 points unchanged).

Rebuild (needs mediapipe 0.10.21 installed): ``python -m jova_core.mouth.face_model OUT``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zipfile
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "face_landmarker.task"
SOURCE_VERSION = "0.10.21"
# The wheel's files (under mediapipe/modules/) and their SHA-256, so a rebuild from
# another wheel stops instead of shipping other networks under the same name.
DETECTOR = ("face_detection/face_detection_short_range.tflite",
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8")
LANDMARKS = ("face_landmark/face_landmark.tflite",
             "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814")
MESH_POINTS, TASKS_POINTS = 468, 478
# Stand-ins for the iris points 468..477 (left: centre, 4 edges; then right), as in
# the Tasks graph's iris mapping: upper lid middle, eye corners, lower lid middle.
IRIS_STAND_INS = (159, 33, 159, 133, 145, 386, 263, 386, 362, 374)
# Members start on 64-byte boundaries: the runtime maps the networks straight from the
# bundle and otherwise copies every unaligned weight buffer (with a warning).
ALIGNMENT = 64
_ALIGNMENT_EXTRA_ID = 0xD935  # zipalign's extra field: its alignment, then padding
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so a rebuild is byte-identical


def _wheel_file(modules_dir: Path, entry: tuple[str, str]) -> bytes:
    path = modules_dir / entry[0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the face model is built from mediapipe=={SOURCE_VERSION}'s files")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry[1]:
        raise ValueError(f"{path} is not the file of mediapipe=={SOURCE_VERSION}; install that version to rebuild")
    return data


def add_iris_slots(mesh_model: bytes) -> bytes:
    """The 468-point mesh network with a GATHER appended: its landmark output becomes
    [1, 1, 1, 478 * 3] (mesh points, then IRIS_STAND_INS)."""
    import flatbuffers
    import numpy as np
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    model = tfl.ModelT.InitFromPackedBuf(bytearray(mesh_model), 0)
    graph = model.subgraphs[0]
    mesh_output = graph.outputs[0]
    if list(graph.tensors[mesh_output].shape) != [1, 1, 1, MESH_POINTS * 3]:
        raise ValueError(f"expected the 468-point mesh network, got output shape {graph.tensors[mesh_output].shape}")
    iris = np.array(IRIS_STAND_INS)[:, None] * 3 + np.arange(3)  # x, y, z of each stand-in
    indices = np.concatenate([np.arange(MESH_POINTS * 3), iris.ravel()]).astype("<i4")

    def add_tensor(name: bytes, shape: list[int], dtype: int, data: bytes | None) -> int:
        buffer = tfl.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(data, np.uint8)
        model.buffers.append(buffer)
        tensor = tfl.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.buffer = name, shape, dtype, len(model.buffers) - 1
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    index_tensor = add_tensor(b"iris_slot_indices", [len(indices)], tfl.TensorType.INT32, indices.tobytes())
    output_tensor = add_tensor(b"mesh_with_iris_slots", [1, 1, 1, len(indices)], tfl.TensorType.FLOAT32, None)
    code = tfl.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = tfl.BuiltinOperator.GATHER
    code.version = 1
    model.operatorCodes.append(code)
    gather = tfl.OperatorT()
    gather.opcodeIndex = len(model.operatorCodes) - 1
    gather.inputs, gather.outputs = [mesh_output, index_tensor], [output_tensor]
    gather.builtinOptionsType = tfl.BuiltinOptions.GatherOptions
    gather.builtinOptions = tfl.GatherOptionsT()
    gather.builtinOptions.axis = 3
    graph.operators.append(gather)
    graph.outputs[0] = output_tensor
    builder = flatbuffers.Builder(len(mesh_model) + 16384)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _write_aligned(bundle: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED  # the runtime reads members in place
    local_header = 30 + len(name.encode()) + 6  # fixed part + name + the extra field's own header
    padding = -(bundle.fp.tell() + local_header) % ALIGNMENT
    info.extra = struct.pack("<HHH", _ALIGNMENT_EXTRA_ID, 2 + padding, ALIGNMENT) + bytes(padding)
    bundle.writestr(info, data)


def build_face_landmarker_task(out_path: str, modules_dir: str | None = None, overwrite: bool = False) -> None:
    """Write the face_landmarker.task bundle built from mediapipe 0.10.21's networks
    (``modules_dir``: that wheel's ``mediapipe/modules``, by default the installed one's)."""
    from ..files import atomic_output

    if modules_dir is None:
        import mediapipe

        modules_dir = os.path.join(os.path.dirname(mediapipe.__file__), "modules")
    detector = _wheel_file(Path(modules_dir), DETECTOR)
    landmarks = add_iris_slots(_wheel_file(Path(modules_dir), LANDMARKS))
    with atomic_output(out_path, overwrite) as partial:
        with zipfile.ZipFile(partial, "w") as bundle:
            _write_aligned(bundle, "face_detector.tflite", detector)
            _write_aligned(bundle, "face_landmarks_detector.tflite", landmarks)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m jova_core.mouth.face_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help=f"the .task file to write (the shipped one is {SHIPPED.name} in jova_core/assets)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    try:
        build_face_landmarker_task(args.out, overwrite=args.overwrite)
    except ImportError as error:
        print(f"needs mediapipe=={SOURCE_VERSION} ({error})", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
