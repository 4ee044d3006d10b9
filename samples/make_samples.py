"""Generate the bundled procedural RGB-D sample scenes (run: ``python samples/make_samples.py``).

Each scene is a room seen by a pinhole camera (floor, ceiling, side walls, back wall)
with axis-aligned boxes standing at several depths in front of it. Pixels are ray-cast
exactly, so the stored depth is the true z coordinate of the first surface hit (metres in
the scene, millimetres in the 16-bit PNG). Colour is averaged over 3 x 3 rays per pixel;
depth comes from the ray through the pixel centre.

The scenes come from the package's generator, ``defocuskit/sources/_procedural_scenes.py``
(the same one the ``procedural`` source draws any number of scenes with); this script picks
the eight seeds, the size and the 3 x 3 supersampling, and writes the files.

The output (``scenes/*.png`` and ``manifest.json``) is a pure function of this script and
that module: ``tests/test_samples.py`` regenerates it and compares byte for byte.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helpers sit beside this script, which is not a package
    sys.path.insert(0, str(HERE))

from _samples_png import write_png  # noqa: E402

from defocuskit.sources._procedural_scenes import draw_scene, pinhole  # noqa: E402
from defocuskit.sources._procedural_scenes import render_scene as _render  # noqa: E402

__all__ = ["HEIGHT", "WIDTH", "CAMERA", "SCENES", "scene_params", "render_scene", "generate"]

HEIGHT, WIDTH = 256, 320
# Pinhole intrinsics in pixels; f is NYU-v2's (518.9 px at 640 wide) halved for 320 wide:
# {"fx_px": 260.0, "fy_px": 260.0, "cx_px": 159.5, "cy_px": 127.5}.
CAMERA = pinhole(HEIGHT, WIDTH)
SUPERSAMPLE = 3
# scene name -> (seed, split); the last two are held out for testing.
SCENES = {f"room_{i:02d}": (1000 + i, "train" if i < 6 else "test") for i in range(8)}
INVALID_SCENE = "room_04"  # carries a small screen whose depth reads as invalid (0)


def scene_params(name: str) -> dict:
    """Draw the geometry and materials of scene ``name`` from its seed (all lengths in metres).

    Coordinates: camera at the origin, x right, y down, z forward (optical axis).
    """
    seed, split = SCENES[name]
    params = draw_scene(seed, camera=CAMERA, invalid_screen=name == INVALID_SCENE)
    return {"seed": seed, "split": split, **{k: v for k, v in params.items() if k != "seed"}}


def render_scene(params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene.

    Returns
    -------
    rgb : (256, 320, 3) uint8 ndarray
    depth_mm : (256, 320) uint16 ndarray, millimetres along the optical axis; 0 = invalid
    """
    rgb, depth = _render(params, height=HEIGHT, width=WIDTH, camera=CAMERA,
                         supersample=SUPERSAMPLE)
    depth_mm = np.floor(np.nan_to_num(depth, nan=0.0) * 1000.0 + 0.5).astype(np.uint16)
    return rgb, depth_mm


def generate(out_dir: str | Path = HERE) -> dict:
    """Render every scene into ``out_dir/scenes/`` and write ``out_dir/manifest.json``."""
    out_dir = Path(out_dir)
    (out_dir / "scenes").mkdir(parents=True, exist_ok=True)
    scenes = {}
    for name in SCENES:
        params = scene_params(name)
        rgb, depth_mm = render_scene(params)
        write_png(out_dir / "scenes" / f"{name}_rgb.png", rgb)
        write_png(out_dir / "scenes" / f"{name}_depth.png", depth_mm)
        valid = depth_mm[depth_mm > 0]
        scenes[name] = {"rgb": f"scenes/{name}_rgb.png", "depth": f"scenes/{name}_depth.png",
                        "depth_range_m": [int(valid.min()) / 1000, int(valid.max()) / 1000],
                        "invalid_pixels": int((depth_mm == 0).sum()), **params}
    manifest = {
        "format": "defocuskit-samples", "version": 1, "generator": "samples/make_samples.py",
        "image_size": {"rows": HEIGHT, "cols": WIDTH},
        "units": {"rgb_png": "8-bit sRGB", "depth_png": "uint16 millimetres",
                  "invalid_depth_value": 0, "geometry": "metres", "intrinsics": "pixels"},
        "camera": {"model": "pinhole", **CAMERA, "frame": "x right, y down, z forward",
                   "pixel_ray": "pixel (row v, col u) centre: ((u - cx)/fx, (v - cy)/fy, 1)",
                   "depth": "z coordinate of the first hit (along the optical axis)",
                   "colour_rays_per_pixel": SUPERSAMPLE**2},
        "png_writer": {"zlib": zlib.ZLIB_RUNTIME_VERSION, "level": 9},
        "splits": {s: [n for n in SCENES if SCENES[n][1] == s] for s in ("train", "test")},
        "scenes": scenes,
    }
    text = json.dumps(manifest, indent=1) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE), help="output folder (default: samples/)")
    args = parser.parse_args(argv)
    manifest = generate(args.out)
    print(f"wrote {len(manifest['scenes'])} scenes to {args.out}")


if __name__ == "__main__":
    main()
