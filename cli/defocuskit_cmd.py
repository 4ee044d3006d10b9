"""`defocuskit` command line: synth, preview, inspect, deconvolve, cameras, sources.

A thin layer: parse, validate, call the library, report. Library errors on user input
(:class:`defocuskit.errors.DefocusKitError`) become one clear line and exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

from defocuskit import __version__
from defocuskit.camera.presets import list_presets
from defocuskit.camera.table import TABLE_KEYS
from defocuskit.errors import ConfigError, DefocusKitError
from defocuskit.pipeline.config import RANGES, resolve_synth_config
from defocuskit.recipe import OLD_SCENE_ONLY, RENDER_MODES, SCENE_ONLY, normalize_render_mode
from defocuskit.sources import list_sources

from ._common import CONTEXT, count, ranged, user_errors
from ._synth_options import parse_chromatic_option, parse_kv, parse_psf_option, parse_size


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="defocuskit")
def main():
    """Synthesise physically documented defocus datasets and look at them.

    \b
    Quick start on the bundled samples:
      defocuskit synth --source samples --output runs/samples.zarr
      defocuskit preview runs/samples.zarr --output runs/preview.png
      defocuskit inspect runs/samples.zarr
    """


@main.command(context_settings=CONTEXT)
@click.option("--source", help="Reader name (see `defocuskit sources`).")
@click.option("--input", "input_", help="The reader's input: a file or a folder (none for "
              "samples, middlebury and procedural, which carry or make their own data).")
@click.option("--output", help="Output dataset: a folder path (…/name.zarr) or fsspec URL.")
@click.option("--camera", "camera", multiple=True, metavar="PRESET|KEY=VALUE",
              help="Camera preset (see `defocuskit cameras`); it brings its source's sigma "
              "rule, focus policy and render mode, which the options below override. Or a "
              "camera by its parameters, repeatable or comma-separated: focal_mm, f_number "
              "or aperture_mm, pitch_um (one output pixel) or sensor_width_mm (pitch = "
              "width / image width), and optionally coc_model, "
              "coc_to_sigma, coc_offset_px, coc_step_px, focus, mode (e.g. --camera "
              "focal_mm=50,f_number=2.8,pitch_um=5.6); with a preset they replace its values "
              "(--camera 2hded --camera f_number=4). Replaces a config file's camera. "
              "[default: 2hded]")
@click.option("--focus", help="Focus policy: fixed:METRES | uniform | histogram | syndof | "
              "stack:K | stack:S1,S2,… [default: the camera preset's (histogram if its source "
              "states none)]")
@click.option("--render-mode", type=click.Choice([*RENDER_MODES, SCENE_ONLY]),
              help="Render mode: layered (depth layers, each blurred and laid over those "
              "behind it: a blurred foreground covers the background, a sharp one stays "
              "sharp), gather (each pixel averages the AiF with its own sigma: no "
              "occlusion), scatter (each pixel spreads its own PSF: no occlusion), or "
              "scene-only: store the scene only (AiF and depth) for `trainer fit "
              "--on-the-fly`. [default: the camera preset's (layered if its source states "
              "none)]")
@click.option("--mode", "old_mode", hidden=True,
              type=click.Choice([*RENDER_MODES, SCENE_ONLY, OLD_SCENE_ONLY]),
              help="The older name of --render-mode (none: scene-only).")
@click.option("--coc-model", type=click.Choice(["exact", "paper"]),
              help="CoC formula: exact thin lens D f/(S-f) |x-S|/x, or the 2HDED:NET paper's "
              "(f/S) D |x-S|/x. [default: the camera preset's]")
@click.option("--psf", metavar="gaussian|disc|polygon:N[,ROT]|bank:PATH", callback=parse_psf_option,
              help="PSF shape: gaussian (sigma), disc (uniform, radius 2 sigma, "
                   "anti-aliased), polygon:N[,ROT] (an N-blade aperture of the disc's area, "
                   "first vertex ROT degrees from +x) or bank:PATH (a calibrated PSF bank "
                   ".npz, docs/camera_model.md); polygon and bank need --render-mode gather or "
                   "scatter. [default: gaussian]")
@click.option("--dual-pixel/--no-dual-pixel", default=None,
              help="Also store the left and right half-aperture views (defocused_left, "
                   "defocused_right); --render-mode gather or scatter, no --noise or "
                   "--linear-light.")
@click.option("--diffraction", type=ranged(RANGES["diffraction"]), metavar="NM",
              help="Diffraction floor: the Airy-equivalent Gaussian sigma = 0.42 lambda N / "
                   "pitch for this wavelength in nm (e.g. 550), combined in quadrature with "
                   "the defocus sigma; 0: off. [default: the camera preset's (off unless its "
                   "source models diffraction)]")
@click.option("--chromatic", metavar="R,G,B", callback=parse_chromatic_option,
              help="Longitudinal chromatic aberration: the focal-length offsets of the red, "
                   "green and blue channels in mm (e.g. 0.05,0,-0.03); each channel is "
                   "rendered with its own CoC and the stored sigma gets a channel axis "
                   "(docs/camera_model.md). [default: off]")
@click.option("--jpeg", type=ranged(RANGES["jpeg"]), metavar="QUALITY",
              help="Pass every stored rendered image through a JPEG round trip at this "
                   "quality, 1..100 (off by default).")
@click.option("--coc-to-sigma", type=ranged(RANGES["coc_to_sigma"]),
              help="Replace the camera preset's CoC -> sigma rule by sigma = K * CoC (e.g. "
              "0.25), K in (0, 100]. [default: the preset's rule]")
@click.option("--linear-light/--no-linear-light", default=None,
              help="Blur in linear light (sRGB decode, blur, encode).")
@click.option("--noise", "noise", multiple=True, metavar="KEY=VALUE",
              callback=parse_kv, help="Sensor noise parameter, repeatable (off by default).")
@click.option("--resize", callback=parse_size, metavar="HxW",
              help="Resize every frame to HxW before rendering.")
@click.option("--split", "splits", multiple=True, help="Only these splits (repeatable).")
@click.option("--limit", type=ranged(RANGES["limit"]), help="At most N samples per split.")
@click.option("--splits", "splits_path", type=click.Path(dir_okay=False),
              help="NYU only: splits.mat (default: beside the input .mat).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", callback=parse_kv,
              help="Reader option, repeatable (e.g. --option crop=false).")
@click.option("--jobs", "-j", type=ranged(RANGES["jobs"]), help="Worker processes. [default: 1]")
@click.option("--backend", type=click.Choice(["loky", "dask"]),
              help="Where shards run: local processes or a dask cluster. [default: loky]")
@click.option("--scheduler", help="Dask scheduler address for --backend dask.")
@click.option("--seed", type=ranged(RANGES["seed"]), help="Base random seed. [default: 0]")
@click.option("--shard-size", type=ranged(RANGES["shard_size"]),
              help="Samples per shard, 1 to 4096. [default: 64]")
@click.option("--compressor", type=click.Choice(["lz4", "zstd"]), help="[default: lz4]")
@click.option("--on-error", type=click.Choice(["raise", "skip"]),
              help="Stop at the first bad sample, or skip it and record why. [default: raise]")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON or TOML file with the same keys; options given here override it.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run (redo incomplete shards).")
@click.option("--overwrite", is_flag=True, help="Replace an existing defocuskit dataset (never "
              "anything else); the old one stays until the new one is complete.")
@click.option("--strict-resume", is_flag=True,
              help="Record a full hash of every input byte when the dataset is started; "
                   "every --resume reads the whole input again and refuses any change "
                   "(default: sizes, the listing and each file's first and last KiB).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: only on a terminal).")
@user_errors
def synth(source, input_, output, camera, focus, render_mode, old_mode, coc_model, psf,
          dual_pixel, diffraction, chromatic, jpeg, coc_to_sigma,
          linear_light, noise, resize, splits, limit, splits_path, options, jobs, backend,
          scheduler, seed, shard_size, compressor, on_error, config_file, resume, overwrite,
          strict_resume, progress):
    """Render a defocus dataset from all-in-focus images and depth.

    \b
    Example:
      defocuskit synth --source samples --output runs/samples.zarr \\
          --camera syndof --jobs 2
      defocuskit synth --source middlebury --output moto.zarr \\
          --camera d3net-nyu --focus fixed:3.0 --render-mode gather
      defocuskit synth --source nyu --input nyu_depth_v2_labeled.mat \\
          --output nyu.zarr --jobs 2 --resume
      defocuskit synth --source samples --output scenes.zarr --render-mode scene-only
      defocuskit synth --source procedural --output own.zarr \\
          --camera focal_mm=50,f_number=2.8,pitch_um=5.6
    """
    from defocuskit.pipeline.synth import run_synth  # loads Zarr: only for this command

    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if render_mode and old_mode:
        raise click.UsageError("give --render-mode or its older name --mode, not both")
    given = {"source": source, "input": input_, "output": output,
             "camera": ",".join(camera) or None,
             "focus": focus, "render_mode": normalize_render_mode(render_mode or old_mode),
             "coc_model": coc_model, "psf": psf,
             "dual_pixel": dual_pixel, "jpeg": jpeg, "diffraction": diffraction,
             "chromatic": chromatic,
             "coc_to_sigma": coc_to_sigma, "linear_light": linear_light,
             "noise": noise or None, "resize": resize,
             "splits": list(splits) or None, "limit": limit, "jobs": jobs,
             "backend": backend, "scheduler": scheduler, "seed": seed,
             "shard_size": shard_size, "compressor": compressor, "on_error": on_error}
    if splits_path:
        options = {**options, "splits_path": splits_path}
    config = resolve_synth_config(config_file=config_file, overrides=given,
                                  source_options=options)
    summary = run_synth(config, resume=resume, overwrite=overwrite, progress=progress,
                        strict_resume=strict_resume)
    for note in summary.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {count(summary.n_samples, 'sample')} in "
               f"{count(summary.n_shards, 'shard')} to "
               f"{summary.output} in {summary.seconds:.1f} s "
               f"({summary.samples_per_s:.1f} samples/s)"
               + (f"; {count(summary.n_shards_reused, 'shard')} already complete"
                  if summary.n_shards_reused else ""))
    if summary.skipped:
        click.echo(f"skipped {count(summary.n_skipped, 'sample')} (recorded in the dataset's "
                   "'skipped' attribute):", err=True)
        for s in summary.skipped[:10]:
            click.echo(f"  {s['split']}/{s['sample_id']}: {s['error']}", err=True)


@main.command(context_settings=CONTEXT)
@click.argument("dataset")
@click.option("--split", help="Split to show [default: the first].")
@click.option("-n", "n", type=ranged(1, None, integer=True), default=4, show_default=True,
              help="Samples to show.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="PNG file to write.")
@click.option("--stack-index", type=click.IntRange(min=0), metavar="K",
              help="Focal-stack split: show image K of each stack only [default: every image "
                   "of the stack, one column each].")
@user_errors
def preview(dataset, split, n, output, stack_index):
    """Plot a grid of samples (AiF, defocused, depth, sigma), the sigma histogram and
    the camera's CoC-vs-depth curve; the title says whether the dataset has sensor noise
    and was blurred in linear light. A focal stack shows every image with its focus
    distance (or one, --stack-index).

    \b
    Example:
      defocuskit preview runs/samples.zarr --split train -n 4 --output runs/preview.png
      defocuskit preview runs/stack.zarr -n 2 --stack-index 1 --output runs/stack1.png
    """
    # loads Zarr and matplotlib: only for this command
    from defocuskit.dataset.preview import preview_dataset

    path = preview_dataset(dataset, output, split=split, n=n, stack_index=stack_index)
    click.echo(f"wrote {path}")


@main.command(context_settings=CONTEXT)
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--verify", is_flag=True, help="Read every stored byte: compare every file with "
              "the dataset's manifest (size and hash) and every chunk with its checksum; "
              "report each damaged file, and missing shard files and checksum failures by "
              "split, array and sample range (exit 3).")
@user_errors
def inspect(dataset, as_json, verify):
    """Summarise a dataset: splits, counts, shapes, camera, depth and sigma statistics,
    completeness. Files are compared with the manifest by size (metadata by checksum), no
    data read beyond the statistics' samples; damage found is listed one line per problem
    (exit 3; exit 2 for an unfinished dataset). --verify reads everything.

    \b
    Example:
      defocuskit inspect runs/samples.zarr
      defocuskit inspect runs/samples.zarr --json
      defocuskit inspect runs/samples.zarr --verify
    """
    # loads Zarr: only for this command
    from defocuskit.dataset.summary import format_summary, summarize

    if verify:
        _verify(dataset, as_json)
    info = summarize(dataset)
    click.echo(json.dumps(info, indent=2) if as_json else format_summary(info))
    if info["problems"]:
        sys.exit(3)
    if not info["complete"]:
        sys.exit(2)


def _verify(dataset, as_json: bool):
    """`inspect --verify`: every file against the manifest, every chunk's checksum."""
    from defocuskit.dataset.store import open_dataset  # loads Zarr: only for this command
    from defocuskit.dataset.verify import format_problems, verify_dataset

    try:
        ds = open_dataset(dataset, require_complete=False, check_manifest=False)
        total = sum(len(ds[s]) for s in ds.splits)
    except DefocusKitError:
        total = None  # an unreadable root: verify_dataset names the damage
    status: dict = {}
    with tqdm(total=total, unit="sample", desc="verify", disable=None,
              file=sys.stderr) as bar:
        problems = verify_dataset(dataset, progress=bar.update, status=status)
    if as_json:
        click.echo(json.dumps({"path": str(dataset), "ok": not problems,
                               "manifest": status["manifest"],
                               "problems": [vars(p) for p in problems]}, indent=2))
    else:
        click.echo(format_problems(dataset, problems, manifest=status["manifest"]))
    sys.exit(3 if problems else 0)


@main.command(context_settings=CONTEXT)
@click.argument("input_", metavar="INPUT")
@click.option("--sigma", "sigma", metavar="NPY", help="An image INPUT's sigma map: a .npy "
              "float (H, W) array in pixels. Leave out when INPUT is a dataset.")
@click.option("--sample", metavar="SPLIT/INDEX", help="A dataset INPUT's sample, e.g. test/0 "
              "[default: the first usable sample of the first split].")
@click.option("--stack-index", type=click.IntRange(min=0), metavar="K",
              help="Focal-stack split: deconvolve image K of the stack [default: 0].")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="PNG file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file.")
@click.option("--psf", type=click.Choice(["gaussian", "disc"]),
              help="PSF shape [default: the dataset's; gaussian for an image INPUT].")
@click.option("--method", type=click.Choice(["levels", "per-pixel"]), default="levels",
              show_default=True, help="levels: whole-image deconvolutions at constant sigma "
              "levels, interpolated per pixel (seconds); per-pixel: a 25x25 patch per pixel "
              "(Anwar et al.; about 1 ms per pixel).")
@click.option("--lam", type=ranged(0.0, None, lo_open=True), default=None, metavar="LAMBDA",
              help="Data weight of the hyper-Laplacian deconvolution [default: 300].")
@user_errors
def deconvolve(input_, sigma, sample, stack_index, output, overwrite, psf, method, lam):
    """Deconvolve a defocused image with a known sigma map (non-blind; hyper-Laplacian
    gradient prior, Krishnan & Fergus). INPUT is a dataset (its sample's defocused image,
    true sigma map and PSF) or an image file with --sigma map.npy. Writes an 8-bit PNG.

    \b
    Example:
      defocuskit deconvolve runs/samples.zarr --sample test/0 --output runs/deblurred.png
      defocuskit deconvolve photo.png --sigma sigma.npy --psf disc --output sharp.png
    """
    from defocuskit.deblur import deconvolve as run_deconvolve  # loads Numba: only for this command
    from defocuskit.deblur.files import read_dataset_sample, read_image_and_sigma, write_png
    from defocuskit.deblur.hqs import LAMBDA
    if Path(input_).is_dir():
        if sigma is not None:
            raise ConfigError("deconvolve: a dataset INPUT brings its own sigma map; leave "
                              "out --sigma")
        img, sig, ds_psf, where = read_dataset_sample(input_, sample, stack_index)
        psf = psf or ds_psf
    else:
        if not Path(input_).is_file():
            raise ConfigError(f"deconvolve: INPUT {input_!r} is neither a dataset folder nor "
                              "an image file")
        if sigma is None or sample is not None or stack_index is not None:
            raise ConfigError("deconvolve: an image INPUT needs --sigma map.npy (and takes no "
                              "--sample or --stack-index)")
        img, sig = read_image_and_sigma(input_, sigma)
        psf, where = psf or "gaussian", Path(input_).name
    out = run_deconvolve(img, sig, psf=psf, method=method,
                         lam=LAMBDA if lam is None else lam)
    path = write_png(output, out, overwrite=overwrite)
    click.echo(f"wrote {path} ({where}, {psf} PSF, sigma up to {float(np.nanmax(sig)):.2f} px, "
               f"{method})")


@main.command(context_settings=CONTEXT)
def cameras():
    """List the camera presets with their published sources, and the keys of a camera
    given by its parameters.

    \b
    Example:
      defocuskit cameras
    """
    for preset in list_presets().values():
        heading, _, body = preset.describe().partition(": ")  # "name (kind): ..."
        click.echo(f"{heading}\n  " + body.replace("\n", "\n  ") + "\n")
    click.echo("A camera can also be given by its parameters, e.g. --camera "
               f"focal_mm=50,f_number=2.8,pitch_um=5.6; keys: {', '.join(TABLE_KEYS)}")


@main.command(context_settings=CONTEXT)
def sources():
    """List the dataset readers.

    \b
    Example:
      defocuskit sources
    """
    for name, desc in list_sources().items():
        click.echo(f"{name:<12} {desc}")


if __name__ == "__main__":  # pragma: no cover
    main()
