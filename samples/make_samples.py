"""Generate the bundled procedural RGB-D sample scenes (run: ``python samples/make_samples.py``).

Each scene is a room seen by a pinhole camera (floor, ceiling, side walls, back wall)
with axis-aligned boxes standing at several depths in front of it. Pixels are ray-cast
exactly, so the stored depth is the true z coordinate of the first surface hit (metres in
the scene, millimetres in the 16-bit PNG). Colour is averaged over 3 x 3 rays per pixel;
depth comes from the ray through the pixel centre.

The output (``scenes/*.png`` and ``manifest.json``) is a pure function of this script:
``tests/test_samples.py`` regenerates it and compares byte for byte.
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
from _samples_textures import SplitMix64, texture_value  # noqa: E402

__all__ = ["HEIGHT", "WIDTH", "CAMERA", "SCENES", "scene_params", "render_scene", "generate"]

HEIGHT, WIDTH = 256, 320
# Pinhole intrinsics in pixels; f is NYU-v2's (518.9 px at 640 wide) halved for 320 wide.
CAMERA = {"fx_px": 260.0, "fy_px": 260.0, "cx_px": 159.5, "cy_px": 127.5}
SUPERSAMPLE = 3
# scene name -> (seed, split); the last two are held out for testing.
SCENES = {f"room_{i:02d}": (1000 + i, "train" if i < 6 else "test") for i in range(8)}
INVALID_SCENE = "room_04"  # carries a small screen whose depth reads as invalid (0)

_AXES = {"x": 0, "y": 1, "z": 2}


def _material(rng: SplitMix64, textures, scale_range, light: bool) -> dict:
    lo, hi = (0.55, 0.95) if light else (0.08, 0.5)
    c0 = [rng.uniform(lo, hi, ndigits=2) for _ in range(3)]
    c1 = [round(max(0.0, min(1.0, v * rng.uniform(0.25, 0.6, ndigits=2))), 2) for v in c0]
    texture = rng.choice(textures)
    mat = {"texture": texture, "scale_m": rng.uniform(*scale_range), "colors": [c0, c1],
           "seed": rng.integer(0, 1 << 30),
           "offset_m": [rng.uniform(0.0, 5.0), rng.uniform(0.0, 5.0)]}
    if texture == "stripes":
        mat["direction"] = [rng.integer(-3, 4), rng.integer(1, 4)]
    return mat


def scene_params(name: str) -> dict:
    """Draw the geometry and materials of scene ``name`` from its seed (all lengths in metres).

    Coordinates: camera at the origin, x right, y down, z forward (optical axis).
    """
    seed, split = SCENES[name]
    rng = SplitMix64(seed)
    cam_h = rng.uniform(1.0, 1.5)
    room = {"floor_y_m": cam_h, "ceiling_y_m": round(cam_h - rng.uniform(2.6, 3.2), 3),
            "left_wall_x_m": -rng.uniform(1.8, 3.0), "right_wall_x_m": rng.uniform(1.8, 3.0),
            "back_wall_z_m": rng.uniform(6.0, 9.6)}
    back = room["back_wall_z_m"]
    materials = {
        "floor": _material(rng, ["planks", "checkers"], (0.2, 0.45), light=False),
        "ceiling": _material(rng, ["noise"], (0.5, 1.0), light=True),
        "left_wall": _material(rng, ["bricks", "noise", "stripes"], (0.12, 0.35), light=True),
        "right_wall": _material(rng, ["bricks", "noise", "stripes"], (0.12, 0.35), light=True),
        "back_wall": _material(rng, ["bricks", "noise", "stripes", "checkers"], (0.15, 0.4),
                               light=True),
    }
    boxes = []
    any_texture = ["checkers", "stripes", "noise", "text", "bricks"]
    box_textures = [any_texture, ["text"], any_texture, any_texture]  # fine print in every scene
    bins = [(0.7, 1.3), (1.5, 2.5), (2.7, 4.2), (4.4, back - 1.2)]
    for k, (z_lo, z_hi) in enumerate(bins):
        z0 = rng.uniform(z_lo, z_hi)
        half_view = 0.75 * z0 * CAMERA["cx_px"] / CAMERA["fx_px"]
        width = rng.uniform(0.3, 0.9)
        xc = rng.uniform(-half_view, half_view)
        x0 = max(room["left_wall_x_m"] + 0.05, round(xc - width / 2, 3))
        x1 = min(room["right_wall_x_m"] - 0.05, round(x0 + width, 3))
        if k == 0:  # tall enough for its front face to show above the image's bottom edge
            height = rng.uniform(cam_h - 0.3 * z0, cam_h + 0.4)
        else:
            height = rng.uniform(0.4, 1.9)
        boxes.append({"kind": "box", "x_m": [x0, x1],
                      "y_m": [round(cam_h - height, 3), cam_h],
                      "z_m": [z0, round(min(z0 + rng.uniform(0.3, 0.8), back - 0.05), 3)],
                      "material": _material(rng, box_textures[k], (0.03, 0.15) if k != 1
                                            else (0.025, 0.04), light=k % 2 == 0)})
    # A poster with text-like detail hung just in front of the back wall.
    px = rng.uniform(room["left_wall_x_m"] + 0.3, room["right_wall_x_m"] - 1.3)
    py = rng.uniform(room["ceiling_y_m"] + 0.4, -0.2)
    poster = _material(rng, ["text"], (0.03, 0.05), light=True)
    boxes.append({"kind": "poster", "x_m": [px, round(px + 1.0, 3)],
                  "y_m": [py, round(py + 0.7, 3)],
                  "z_m": [round(back - 0.02, 3), back], "material": poster})
    invalid = None
    if name == INVALID_SCENE:  # a dark screen: the kind of surface a depth sensor misses
        sx = rng.uniform(room["left_wall_x_m"] + 0.3, room["right_wall_x_m"] - 0.9)
        screen = {"texture": "noise", "scale_m": 0.5, "colors": [[0.05, 0.05, 0.06],
                  [0.02, 0.02, 0.03]], "seed": 7, "offset_m": [0.0, 0.0]}
        boxes.append({"kind": "screen", "x_m": [sx, round(sx + 0.6, 3)], "y_m": [-0.3, 0.05],
                      "z_m": [round(back - 0.06, 3), back], "material": screen})
        invalid = {"object": len(boxes) - 1, "face": "front (-z)",
                   "reason": "dark screen: depth stored as 0 (invalid), colour kept"}
    light = {"position_m": [rng.uniform(-1.0, 1.0), round(room["ceiling_y_m"] + 0.6, 3),
                            rng.uniform(1.5, back / 2)]}
    return {"seed": seed, "split": split, "room": room, "light": light,
            "materials": materials, "objects": boxes, "invalid": invalid}


def _slab(origin, direction, lo, hi):
    """Ray/box slab test per axis; origin and direction are 3-lists of (N,) arrays or scalars.

    Returns t_near, t_far (N,) and the axis (N,) int through which the ray enters.
    """
    t_near = t_far = axis = None
    for a in range(3):
        t1 = (lo[a] - origin[a]) / direction[a]
        t2 = (hi[a] - origin[a]) / direction[a]
        tmin, tmax = np.fmin(t1, t2), np.fmax(t1, t2)
        if a == 0:
            t_near, t_far, axis = tmin, tmax, np.zeros(tmin.shape, dtype=np.int64)
        else:
            axis = np.where(tmin > t_near, a, axis)
            t_near, t_far = np.fmax(t_near, tmin), np.fmin(t_far, tmax)
    return t_near, t_far, axis


def _bounds(obj):
    return ([obj["x_m"][0], obj["y_m"][0], obj["z_m"][0]],
            [obj["x_m"][1], obj["y_m"][1], obj["z_m"][1]])


def _trace(d: list, p: dict):
    """First hit of rays ``d`` (3 arrays (N,), d_z = 1) -> t (= depth z, metres), id, axis, sign.

    Surface ids 0-4 are the room (floor, ceiling, left, right, back), 5+ the objects.
    """
    n = d[0].shape[0]
    best = np.full(n, np.inf)
    sid = np.full(n, -1, dtype=np.int64)
    axis = np.zeros(n, dtype=np.int64)
    sign = np.zeros(n)
    r = p["room"]
    planes = [(1, r["floor_y_m"], -1.0), (1, r["ceiling_y_m"], 1.0), (0, r["left_wall_x_m"], 1.0),
              (0, r["right_wall_x_m"], -1.0), (2, r["back_wall_z_m"], -1.0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, (ax, value, normal) in enumerate(planes):
            t = value / d[ax]
            hit = (t > 0) & (t < best)
            best[hit], sid[hit], axis[hit], sign[hit] = t[hit], k, ax, normal
        for k, obj in enumerate(p["objects"]):
            t_near, t_far, enter = _slab((0.0, 0.0, 0.0), d, *_bounds(obj))
            hit = (t_near <= t_far) & (t_near > 0) & (t_near < best)
            best[hit], sid[hit], axis[hit] = t_near[hit], 5 + k, enter[hit]
            d_enter = np.select([enter[hit] == a for a in range(3)], [c[hit] for c in d])
            sign[hit] = np.where(d_enter > 0, -1.0, 1.0)
    return best, sid, axis, sign


def _shadowed(x: list, light, objects) -> np.ndarray:
    """True where the segment from surface points ``x`` (3 arrays) to the light hits an object."""
    seg = [light[a] - x[a] for a in range(3)]
    out = np.zeros(x[0].shape[0], dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for obj in objects:
            t_near, t_far, _ = _slab(x, seg, *_bounds(obj))
            out |= (t_near <= t_far) & (t_near > 1e-4) & (t_near < 1.0)
    return out


_FACE_COORDS = {0: (2, 1), 1: (0, 2), 2: (0, 1)}  # normal axis -> surface (s, t) axes


def _pick(axis: np.ndarray, comps: list) -> np.ndarray:
    """Per element, the component of ``comps`` (3 arrays) selected by ``axis`` (0, 1, 2)."""
    return np.where(axis == 0, comps[0], np.where(axis == 1, comps[1], comps[2]))


def _shade(d, t, sid, axis, sign, p):
    """Colour (N, 3) of each ray's hit: textured albedo x (ambient + shadowed point light)."""
    x = [c * t for c in d]
    names = ["floor", "ceiling", "left_wall", "right_wall", "back_wall"]
    mats = [p["materials"][k] for k in names] + [o["material"] for o in p["objects"]]
    albedo = np.zeros((t.shape[0], 3))
    for k, mat in enumerate(mats):
        m = sid == k
        if not m.any():
            continue
        ax, xs = axis[m], [c[m] for c in x]
        s_m = _pick(ax, [xs[_FACE_COORDS[a][0]] for a in range(3)])
        t_m = _pick(ax, [xs[_FACE_COORDS[a][1]] for a in range(3)])
        v = texture_value(s_m, t_m, mat)[:, None]
        c0, c1 = np.array(mat["colors"][0]), np.array(mat["colors"][1])
        albedo[m] = c0[None, :] + (c1 - c0)[None, :] * v
    light = p["light"]["position_m"]
    to_light = [light[a] - x[a] for a in range(3)]
    r2 = to_light[0] * to_light[0] + to_light[1] * to_light[1] + to_light[2] * to_light[2]
    cos = sign * _pick(axis, to_light) / np.sqrt(r2)
    direct = np.maximum(cos, 0.0) * 12.0 / (4.0 + r2)
    lit = np.flatnonzero(cos > 0)
    dark = _shadowed([c[lit] for c in x], light, p["objects"])
    direct[lit[dark]] *= 0.25
    return albedo * (0.3 + direct)[:, None]


def _rays(offset: tuple[float, float]) -> list:
    """Ray directions (3 arrays (H*W,)) through pixel centres shifted by ``offset`` (rows, cols)."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    dx = ((u.ravel() + offset[1]) - CAMERA["cx_px"]) / CAMERA["fx_px"]
    dy = ((v.ravel() + offset[0]) - CAMERA["cy_px"]) / CAMERA["fy_px"]
    return [dx, dy, np.ones_like(dx)]


def render_scene(params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene.

    Returns
    -------
    rgb : (256, 320, 3) uint8 ndarray
    depth_mm : (256, 320) uint16 ndarray, millimetres along the optical axis; 0 = invalid
    """
    d = _rays((0.0, 0.0))
    t, sid, axis, _ = _trace(d, params)
    depth_mm = np.floor(t * 1000.0 + 0.5).astype(np.uint16).reshape(HEIGHT, WIDTH)
    if params["invalid"] is not None:
        bad = (sid == 5 + params["invalid"]["object"]) & (axis == 2)
        depth_mm[bad.reshape(HEIGHT, WIDTH)] = 0
    offsets = (np.arange(SUPERSAMPLE) - (SUPERSAMPLE - 1) / 2) / SUPERSAMPLE
    acc = np.zeros((HEIGHT * WIDTH, 3))
    for oy in offsets:
        for ox in offsets:
            d = _rays((oy, ox))
            acc += _shade(d, *_trace(d, params), params)
    rgb = np.clip(acc / SUPERSAMPLE**2, 0.0, 1.0)
    return np.floor(rgb * 255.0 + 0.5).astype(np.uint8).reshape(HEIGHT, WIDTH, 3), depth_mm


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
