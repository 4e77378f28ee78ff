"""An integer-arithmetic copy of the default model for search queries.

The shipped all-MiniLM-L6-v2 keeps its weights as int8 with a scale per output column, but
its graph turns them back into float32 before every ``MatMul``, so ONNX Runtime runs float
matrix products: about 6 ms for a 15-token question on one core of this machine, 4.3 ms of
it in ``MatMul``. ONNX Runtime's dynamic quantisation of the same graph multiplies in int8
(VNNI / AVX2 kernels), quantising each activation on the fly: about 3 ms on one core.

Its weights are the shipped ones bit for bit (re-quantising ``q × scale`` per column gives
back ``q`` and ``scale``, since every column of the shipped model uses the full int8 range;
:func:`build` checks it), so the only change is the activations' rounding: query vectors keep
a cosine of about 0.999 with the float path's. Stored vectors still come from the shipped
model, so nothing needs re-embedding. docs/benchmarks.md has the retrieval figures of both.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FILE = "model-query-int8.onnx"
_VERSION = 1  # bump when the recipe changes, so cached copies are rebuilt


def build(folder: Path) -> Path | None:
    """``folder/model-query-int8.onnx``, made once from ``folder/model.onnx``; None when this
    model does not have the shipped layout (int8 weights with a scale per column) or the
    ``onnx`` package is missing. Failures are logged, never raised: queries then use the
    float path."""
    target = folder / FILE
    stamp = folder / "model-query-int8.json"
    source = folder / "model.onnx"
    expected = {"version": _VERSION, "source_bytes": _size(source)}
    try:
        if target.exists() and json.loads(stamp.read_text()) == expected:
            return target
    except (OSError, ValueError):
        pass
    try:
        folded = _float_graph(source)
        if folded is None:
            return None
        model, weights = folded
        from onnxruntime.quantization import QuantType, quantize_dynamic

        partial = folder / (FILE + ".part")
        quiet = _Quiet()
        logging.getLogger().addFilter(quiet)  # the quantiser warns on the root logger
        try:
            quantize_dynamic(model, str(partial), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().removeFilter(quiet)
        if not _same_weights(weights, partial):
            log.warning("query model: re-quantised weights differ from the shipped ones")
            partial.unlink(missing_ok=True)
            return None
        os.replace(partial, target)
        stamp.write_text(json.dumps(expected))
        return target
    except Exception as exc:  # noqa: BLE001 - onnx and onnxruntime raise their own types
        log.warning("query model not built (queries use the float path): %s", exc)
        return None


class _Quiet(logging.Filter):
    """Drops the quantiser's advice to pre-process the model (it is for image models)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _float_graph(source: Path) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]]] | None:
    """``source`` in memory with each ``Mul(Cast(int8 W), scale)`` replaced by its float32
    value (what ONNX Runtime folds it into anyway), and the int8 weights and scales by the
    folded tensor's name; None when the graph has none."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    initial = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    folded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    dropped: set[int] = set()
    for node in graph.node:
        cast = producer.get(node.input[0]) if node.op_type == "Mul" else None
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in initial:
            continue
        if node.input[1] not in initial:
            continue
        quantised = numpy_helper.to_array(initial[cast.input[0]])
        scale = numpy_helper.to_array(initial[node.input[1]])
        if quantised.dtype != np.int8 or quantised.ndim != 2:
            continue
        if scale.size != quantised.shape[1]:
            continue
        value = quantised.astype(np.float32) * scale.reshape(1, -1).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
        folded[node.output[0]] = (quantised, scale.reshape(-1))
        dropped |= {id(node), id(cast)}
    if not folded:
        return None
    kept = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for n in graph.node for name in n.input}
    still = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(still)
    return model, folded


def _same_weights(folded: dict[str, tuple[np.ndarray, np.ndarray]], quantised: Path) -> bool:
    """Whether every matrix product of the quantised file uses the shipped int8 weights and
    scales unchanged (the gathers of the embedding tables stay float, as in the source)."""
    import onnx
    from onnx import numpy_helper

    tensors = {t.name: t for t in onnx.load(str(quantised)).graph.initializer}
    matched = 0
    for name, (weights, scale) in folded.items():
        packed = tensors.get(name + "_quantized")
        if packed is None:
            continue
        if not np.array_equal(numpy_helper.to_array(packed), weights):
            return False
        if not np.allclose(numpy_helper.to_array(tensors[name + "_scale"]), scale, rtol=1e-6):
            return False
        matched += 1
    return matched > 0
