"""Hidden-state capture beside a run (off unless a group sets ``capture_layers``).

A policy that captured activations exposes ``drain_captures()`` (dicts with phase,
agent_id, layer and a float32 vector: the output of decoder layer ``layer`` at the
last prompt token of that decision). After each step the runner hands every policy to
:meth:`ActivationWriter.collect`; when the run closes the writer stores

* ``activations.safetensors``: one tensor ``layer_<L>`` of shape (rows, hidden) per layer;
* ``activations_index.parquet``: step, phase, agent_id, layer, tensor, row; (step, phase,
  agent_id) is the decision's key in ``events.parquet``.

Nothing is written when nothing was captured. No torch here: scripted runs import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TENSORS_FILE = "activations.safetensors"
INDEX_FILE = "activations_index.parquet"


class ActivationWriter:
    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.index: list[dict[str, Any]] = []
        self.vectors: dict[int, list[np.ndarray]] = {}

    def collect(self, step: int, policies: Iterable[Any]) -> None:
        """Take the captures of every distinct policy (shared policy objects count once)."""
        seen: set[int] = set()
        for policy in policies:
            if id(policy) in seen or not hasattr(policy, "drain_captures"):
                continue
            seen.add(id(policy))
            for cap in policy.drain_captures():
                layer = int(cap["layer"])
                rows = self.vectors.setdefault(layer, [])
                self.index.append(
                    {
                        "step": int(step),
                        "phase": cap["phase"],
                        "agent_id": int(cap["agent_id"]),
                        "layer": layer,
                        "tensor": f"layer_{layer}",
                        "row": len(rows),
                    }
                )
                rows.append(np.asarray(cap["vector"], dtype=np.float32))

    def close(self) -> Path | None:
        """Write the files (if anything was captured); return the tensors' path."""
        if not self.index:
            return None
        from safetensors.numpy import save_file

        tensors = {f"layer_{layer}": np.stack(rows) for layer, rows in sorted(self.vectors.items())}
        save_file(tensors, str(self.dir / TENSORS_FILE), metadata={"index": INDEX_FILE})
        pq.write_table(pa.Table.from_pylist(self.index), self.dir / INDEX_FILE)
        return self.dir / TENSORS_FILE


def load_activations(run_dir: str | Path) -> tuple[dict[str, np.ndarray], Any]:
    """(layer tensors, index DataFrame) of a run written with capture on."""
    from safetensors.numpy import load_file

    run_dir = Path(run_dir)
    return load_file(str(run_dir / TENSORS_FILE)), pq.read_table(run_dir / INDEX_FILE).to_pandas()
