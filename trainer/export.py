"""Weights-only export of a checkpoint: what ``eval`` and ``predict`` need, nothing more.

A ``last.pt`` carries the optimiser's momentum (as large as the weights), the scheduler and
the RNG states, so that a run can continue; ``best.pt`` already leaves those out. An export
keeps the weights, the model and training configs, the counters and the history, optionally
with the floating-point weights in half precision (float16: half the size; ``eval`` and
``predict`` load them back into the float32 model). An export cannot be resumed.
"""

from __future__ import annotations

from pathlib import Path

from trainer.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint

__all__ = ["export_weights", "EXPORT_KEYS"]

# what eval / predict read, plus provenance; no optimiser, scheduler or RNG state
EXPORT_KEYS = ("model", "model_name", "model_config", "train_config", "epoch", "step", "best",
               "monitor", "history", "encoder_init", "render_levels")


def export_weights(checkpoint, output, *, half: bool = False) -> dict:
    """Write the weights-only export of ``checkpoint`` to ``output``.

    Returns
    -------
    dict
        ``path`` (the export), ``bytes`` (its size) and ``source_bytes`` (the checkpoint's).

    Raises
    ------
    CheckpointError
        ``checkpoint`` is not a usable trainer checkpoint, or ``output`` (or its temporary
        ``output.tmp``) already exists: an export never replaces a file.
    """
    output = Path(output)
    for path in (output, output.with_name(output.name + ".tmp")):
        if path.exists():
            raise CheckpointError(f"export {output}: {path} already exists; choose another "
                                  "--output (an export never replaces a file)")
    ckpt = load_checkpoint(checkpoint)
    build_model(ckpt, path=checkpoint)  # refuse weights that do not fit their config
    state = {k: ckpt[k] for k in EXPORT_KEYS if k in ckpt}
    if half:
        state["model"] = {k: v.half() if v.is_floating_point() else v
                          for k, v in ckpt["model"].items()}
    state["weights_dtype"] = "float16" if half else "float32"
    state["exported_from"] = str(checkpoint)
    path = save_checkpoint(output, state)
    return {"path": path, "bytes": path.stat().st_size,
            "source_bytes": Path(checkpoint).stat().st_size}
