"""The ``trainer`` command: fit, eval, predict and export the registered models.

A thin layer: parse and check options, call :mod:`trainer`, report. Errors caused by user
input (options, files, datasets, checkpoints) end as one line on stderr and exit code 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import click

from defocuskit import __version__
from trainer.config import MAX_FRAME, PRESETS, RANGES, imagenet_note, resolve_run_config
from trainer.models import MODELS

from ._common import CONTEXT, ranged
from ._common import user_errors as _user_errors

__all__ = ["main", "trainer"]


def _frame_size(allow_none: bool):
    """Click callback: ``N`` -> [N, N], ``HxW`` -> [H, W] (and ``none`` where allowed)."""

    def parse(ctx, param, value):
        if value is None:
            return None
        text = value.strip().lower()
        if allow_none and text == "none":
            return "none"
        parts = text.split("x")
        choices = "N, HxW or none" if allow_none else "N or HxW"
        if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
            size = [int(p) for p in parts]
            if all(32 <= v <= MAX_FRAME and v % 32 == 0 for v in size):
                return size * 2 if len(size) == 1 else size
        raise click.BadParameter(f"expected {choices} in pixels, multiples of 32 from 32 to "
                                 f"{MAX_FRAME} (e.g. 256 or 256x320), got {value!r}")

    return parse


def _progress_options(fn):
    """--progress/--no-progress and --progress-every, alike on fit, eval and predict."""
    fn = click.option("--progress-every", type=ranged(0, None), default=30.0,
                      show_default=True, metavar="SECONDS",
                      help="Without a terminal: seconds between plain progress lines.")(fn)
    return click.option("--progress/--no-progress", default=None,
                        help="Progress on stderr: a bar on a terminal, else a plain line "
                             "every --progress-every seconds (default: on).")(fn)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="trainer")
def trainer():
    """Train and run 2HDED:NET (depth + all-in-focus from one defocused image), MDDNet
    (depth + defocus map) or Anwar et al. (depth classes, the AiF by deconvolution).

    \b
    Example:
      trainer fit --data nyu.zarr --run-dir runs/nyu
      trainer eval --data nyu.zarr --checkpoint runs/nyu/best.pt --json
      trainer predict --checkpoint runs/nyu/best.pt --output out/ photo.jpg
    """


@trainer.command("fit", context_settings=CONTEXT)
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Dataset written by `defocuskit synth`.")
@click.option("--run-dir", required=True, type=click.Path(file_okay=False),
              help="Output directory (config.json, log.csv, last.pt, best.pt, plots).")
@click.option("--model", "model_name", type=click.Choice(list(MODELS)), default=None,
              help="Network: 2hded (default: 2HDED:NET, DenseNet-121), mddnet (MDDNet: "
                   "GLPN encoder, needs the [mddnet] extra) or anwar (Anwar et al.: VGG16, "
                   "patch-pooled depth classes).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="Base schedule: paper (the default for 2hded: SGD lr 2e-4, 500 epochs, "
                   "batch 4), demo (a few CPU minutes), mddnet (the default for mddnet: "
                   "Adam 1e-4, batch 4, MDDNet's losses) or anwar (the default for anwar: "
                   "SGD 1e-2, batch 1, 5 epochs).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON or TOML table of options (see docs/trainer.md); CLI options win.")
@click.option("--epochs", type=ranged(RANGES["epochs"]), help="Number of epochs.")
@click.option("--batch-size", type=ranged(RANGES["batch_size"]),
              help="Samples per step and per process.")
@click.option("--lr", type=ranged(RANGES["lr"]), help="Initial learning rate.")
@click.option("--crop", type=ranged(RANGES["crop"]),
              help="Training crop size in pixels (multiple of 32).")
@click.option("--resize", callback=_frame_size(False), metavar="SIZE",
              help="Official protocol: resize whole frames to N x N or HxW (multiples of 32) "
                   "for training and evaluation, instead of crops.")
@click.option("--heads", help="Heads to train, comma-separated: any of depth, aif, defocus "
                                "(the sigma map in pixels); default: the method's.")
@click.option("--method", type=click.Choice(["supervised", "self-supervised"]), default=None,
              help="supervised (default: every head against its label) or self-supervised "
                   "(defocus head from re-blurring the true AiF; heads aif,defocus, or "
                   "defocus).")
@click.option("--selfsup-anchor", "selfsup_anchor", type=ranged(RANGES["selfsup_anchor"]),
              help="Self-supervised: weight of the label-free cost-volume sigma anchor "
                   "(default 0: the thesis's loss).")
@click.option("--consistency", type=ranged(RANGES["consistency"]),
              help="Weight of MDDNet's sigma vs sigma_camera(depth) term (heads depth and "
                   "defocus; default 0: off).")
@click.option("--consistency-norm", type=click.Choice(["l1", "l2"]), default=None,
              help="Norm of that term: l1 (mean |r|, default) or l2 (mean r^2, MDDNet's "
                   "eq. 5).")
@click.option("--loss", type=click.Choice(["2hded", "mddnet"]), default=None,
              help="Depth and defocus-map terms: 2hded (L1 + gradient; L1 sigma) or mddnet "
                   "(SSIM + scale-invariant log for each map).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None,
              help="sgd (with momentum 0.9) or adam (default: the preset's).")
@click.option("--camera-input/--no-camera-input", "camera_input", default=None,
              help="2HDED:NET: give the network each sample's focus distance, f-number and "
                   "focal length in pixels (FiLM; docs/trainer.md, 'Camera input'); default: "
                   "off.")
@click.option("--on-the-fly/--no-on-the-fly", "on_the_fly", default=None,
              help="Render the training input in the loader from the AiF and depth, a fresh "
                   "camera and focus per sample and epoch (needed for a `synth --render-mode "
                   "scene-only` dataset; default: off).")
@click.option("--camera", help="On-the-fly camera preset (see `defocuskit cameras`; default: "
                               "the dataset's).")
@click.option("--focus", help="On-the-fly focus policy: fixed:METRES, uniform, histogram or "
                              "syndof (default: the dataset's).")
@click.option("--render-mode", type=click.Choice(["gather", "scatter", "layered"]),
              default=None, help="On-the-fly render mode (default: the dataset's; for a "
                                 "scene-only one its camera preset's, else layered).")
@click.option("--psf", type=click.Choice(["gaussian", "disc"]), default=None,
              help="On-the-fly PSF shape (default: the dataset's).")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("--workers", "num_workers", type=ranged(RANGES["num_workers"]),
              help="DataLoader worker processes.")
@click.option("--seed", type=ranged(RANGES["seed"]), help="Random seed.")
@click.option("--train-split", help="Split to train on (default: train; a flat `folder` "
                                    "dataset has one split, all).")
@click.option("--stack-index", type=ranged(RANGES["stack_index"]),
              help="Focal-stack datasets: image K of each stack (0..K-1), with its sigma map "
                   "and camera values, for training and validation (required for a stack).")
@click.option("--val-split", help="Validation: holdout (default: --val-fraction of the "
                                  "training split), a split name, or none.")
@click.option("--val-fraction", type=ranged(RANGES["val_fraction"]),
              help="Share of the training split held out for validation (default 0.05).")
@click.option("--amp/--no-amp", default=None,
              help="bf16 autocast (default: on CUDA only; --amp also on the CPU).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format (default: on CUDA only).")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile.")
@click.option("--encoder-weights", type=click.Path(exists=True, resolve_path=True),
              help="Pretrained encoder (fresh runs only; see docs/trainer.md): 2hded, a "
                   "torchvision DenseNet-121 state dict file (ImageNet); mddnet, GLPN's NYU "
                   "model, a file or folder.")
@click.option("--input-range", type=click.Choice(["centred", "unit"]), default=None,
              help="What the encoder sees of an image x in [0, 1]: centred 2x - 1 or unit x "
                   "(default: the model's own; 2hded centred, as the official code); the "
                   "AiF stays in [0, 1] either way.")
@click.option("--max-steps", type=ranged(RANGES["max_steps"]),
              help="Stop after this many optimiser steps.")
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="Also log to TensorBoard (if installed).")
@click.option("--save", type=click.Choice(["both", "best", "last"]), default=None,
              help="Checkpoints to keep: both (default), best (best.pt only: no --resume) "
                   "or last (last.pt only). See also `trainer export`.")
@click.option("--resume", is_flag=True,
              help="Continue RUN_DIR/last.pt (with RUN_DIR/config.json unless --config).")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier run in RUN_DIR (only this trainer's files).")
@_progress_options
@_user_errors
def fit_cmd(data, run_dir, preset, config_file, resume, overwrite, **options):
    """Train a model and write checkpoints, a CSV log and plots to RUN_DIR.

    \b
    Examples:
      trainer fit --data nyu.zarr --run-dir runs/nyu
      trainer fit --data samples.zarr --run-dir runs/demo --preset demo --device cpu
      trainer fit --data mine.zarr --run-dir runs/mine --train-split all
      trainer fit --data stack.zarr --run-dir runs/stack --stack-index 1
      trainer fit --data nyu.zarr --run-dir runs/nyu --encoder-weights densenet121.pth
      trainer fit --data nyu.zarr --run-dir runs/mdd --heads depth,defocus --consistency 0.1
      trainer fit --data nyu.zarr --run-dir runs/mddnet --model mddnet --encoder-weights glpn-nyu/
      trainer fit --data nyu.zarr --run-dir runs/ss --method self-supervised
      trainer fit --data nyu.zarr --run-dir runs/nyu --resume
      trainer fit --data scenes.zarr --run-dir runs/otf --on-the-fly --camera 2hded
      torchrun --nproc_per_node 4 -m trainer fit --data nyu.zarr --run-dir runs/ddp
    """
    from trainer.fit import fit  # loads torch: `trainer --help` starts without it

    options["compile"] = options.pop("compile_")
    every = options.pop("progress_every")
    camera_input = options.pop("camera_input")
    cfg = resolve_run_config(run_dir, resume=resume, preset=preset, config_file=config_file,
                             overrides=options)
    note = imagenet_note(cfg, preset=preset, config_file=config_file, resume=resume)
    if note is not None and os.environ.get("RANK", "0") == "0":  # rank 0 under torchrun
        click.echo(note)
    if camera_input is not None:  # a model config field, under the config's "model" table
        cfg = dataclasses.replace(cfg, model={**cfg.model, "camera_input": camera_input})
    summary = fit(data, run_dir, cfg, resume=resume, overwrite=overwrite, log=click.echo,
                  progress_every=every)
    if summary["best"] is not None:
        click.echo(f"done: {summary['epochs']} epochs, {summary['steps']} steps, best "
                   f"{summary['monitor']} = {summary['best']:.4g}; checkpoints in {run_dir}")


@trainer.command("eval", context_settings=CONTEXT)
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Dataset written by `defocuskit synth`.")
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A last.pt / best.pt from `trainer fit`.")
@click.option("--split", default="test", show_default=True, help="Split to score.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--make3d", is_flag=True, help="Also report Make3D C1 (<=70 m) / C2 (<=80 m).")
@click.option("--max-depth", type=ranged(RANGES["max_depth"]),
              help="Evaluated depth range in metres: gt beyond is not scored (default: the "
                   "run's, else NYU 10 / Make3D 80, else none; inf: none).")
@click.option("--clip/--no-clip", default=None,
              help="Clip predictions to the evaluated range first (default: as trained, on).")
@click.option("--resize", callback=_frame_size(True), metavar="SIZE",
              help="Resize whole frames to N x N or HxW and score there, or none (default: "
                   "as trained).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--workers", "num_workers", default=0, show_default=True,
              type=ranged(RANGES["num_workers"]),
              help="DataLoader worker processes.")
@click.option("--limit", type=ranged(1, None, integer=True), help="Score only the first N samples.")
@click.option("--stack-index", type=ranged(RANGES["stack_index"]),
              help="Focal-stack split: image K of each stack to score (default: the run's "
                   "--stack-index).")
@click.option("--oracle/--no-oracle", default=None,
              help="Also score the defocused input and its deconvolution with the true sigma "
                   "map (oracle_*, input_*; a few CPU seconds per frame) [default: on for a "
                   "model with an AiF head].")
@_progress_options
@_user_errors
def eval_cmd(data, checkpoint, split, as_json, make3d, max_depth, clip, resize, device,
             num_workers, limit, stack_index, oracle, progress, progress_every):
    """Score a checkpoint on one split (whole frames): depth errors and deltas, PSNR, SSIM,
    defocus-map MSE and MAE (pixels) for the heads it has.

    \b
    Examples:
      trainer eval --data nyu.zarr --checkpoint runs/nyu/best.pt
      trainer eval --data make3d.zarr --checkpoint runs/m3d/best.pt --make3d --json
      trainer eval --data nyu.zarr --checkpoint runs/nyu/best.pt --resize none --no-clip
    """
    # loads torch: `trainer --help` starts without it
    from trainer.evaluate import AS_TRAINED, evaluate_checkpoint, format_table

    resize = AS_TRAINED if resize is None else (None if resize == "none" else resize)
    res = evaluate_checkpoint(data, checkpoint, split=split, device=device,
                              num_workers=num_workers, make3d=make3d, max_depth=max_depth,
                              clip=clip, resize=resize, max_samples=limit,
                              stack_index=stack_index, progress=progress is not False,
                              progress_every=progress_every, oracle=oracle)
    if as_json:
        clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                 for k, v in res.items()}
        click.echo(json.dumps(clean, indent=2))
    else:
        click.echo(format_table(res))


@trainer.command("predict", context_settings=CONTEXT)
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A last.pt / best.pt from `trainer fit`.")
@click.option("--output", required=True, type=click.Path(file_okay=False),
              help="Output directory (created).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=2048 * 2048,
              show_default=True, help="Refuse images larger than this (height x width).")
@click.option("--overwrite", is_flag=True,
              help="Replace output files that exist already (never an input image).")
@click.option("--camera", "camera_spec",
              help="Model anwar: the camera whose blur the AiF deconvolution undoes (a "
                   "preset name or camera table, see `defocuskit cameras`; needs "
                   "--focus-distance); default: the training data's, from the checkpoint.")
@click.option("--focus-distance", type=ranged(0, None, lo_open=True), metavar="METRES",
              help="Model anwar: the focus distance of the input images (replaces the "
                   "camera's).")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@_progress_options
@_user_errors
def predict_cmd(checkpoint, output, device, max_pixels, overwrite, camera_spec,
                focus_distance, images, progress, progress_every):
    """Predict depth (16-bit PNG in mm + a colour map with a colour bar in metres), the
    all-in-focus image and the defocus map (sigma in pixels: .npy + a colour map with a
    colour bar in pixels), for the heads the checkpoint has. For model anwar the AiF is
    the input deconvolved with the blur its predicted depth implies through the camera.

    \b
    Example:
      trainer predict --checkpoint runs/nyu/best.pt --output out/ a.png b.jpg
      -> out/a_depth.png (uint16, mm), out/a_depth_color.png, out/a_aif.png,
         out/a_sigma.npy (float32, px), out/a_sigma_color.png, ...
    Inputs are 8-bit, 16-bit or float in [0, 1] (TIFF); two inputs named alike in different
    folders get distinct outputs (<folder>_<stem>). Every output name is checked before
    anything is written: one that is an input is refused, one that exists already is
    refused unless --overwrite. The files written are listed, one per line.
    """
    from trainer.predict import predict_images  # loads torch: `trainer --help` starts without it

    written = predict_images(checkpoint, images, output, device=device, max_pixels=max_pixels,
                             progress=progress is not False, progress_every=progress_every,
                             overwrite=overwrite,
                             derive_options={"camera": camera_spec,
                                             "focus_distance": focus_distance})
    click.echo(f"wrote {len(written)} files to {output}:")
    for path in written:
        click.echo(f"  {path.name}")


@trainer.command("export", context_settings=CONTEXT)
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A last.pt / best.pt from `trainer fit`.")
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="The export to write (a new file; an existing one is refused).")
@click.option("--half", is_flag=True,
              help="Store the weights in float16 (half the size; loaded back as float32).")
@_user_errors
def export_cmd(checkpoint, output, half):
    """Write a weights-only copy of a checkpoint for `eval` and `predict`: no optimiser,
    scheduler or RNG state (it cannot be resumed).

    \b
    Example:
      trainer export --checkpoint runs/nyu/best.pt --output nyu_weights.pt --half
      trainer predict --checkpoint nyu_weights.pt --output out/ photo.jpg
    """
    from trainer.export import export_weights  # loads torch: `trainer --help` starts without it

    done = export_weights(checkpoint, output, half=half)
    click.echo(f"wrote {done['path']} ({done['bytes'] / 1e6:.1f} MB, "
               f"{'float16' if half else 'float32'} weights; {checkpoint} is "
               f"{done['source_bytes'] / 1e6:.1f} MB)")


TORCH_MISSING = ("trainer needs PyTorch, which is not installed: install the [train] extra "
                 "(pip install -e \".[train]\" in the checkout; CPU-only torch: pip install "
                 "torch --index-url https://download.pytorch.org/whl/cpu)")


def main(argv=None):
    """Console-script entry point (``trainer``)."""
    try:
        return trainer.main(args=argv, prog_name="trainer")
    except ModuleNotFoundError as exc:  # a toolkit-only install: one line, no traceback
        if exc.name != "torch":
            raise
        click.echo(f"Error: {TORCH_MISSING}", err=True)
        raise SystemExit(1) from None
