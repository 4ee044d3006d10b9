"""Procedural indoor scenes: drawn from a seed, ray-cast exactly (the one scene generator).

Both the ``procedural`` source (scenes made on the fly, any number, any size) and
``samples/make_samples.py`` (the eight bundled sample scenes) render with this module.

Each scene is a room seen by a pinhole camera (floor, ceiling, side walls, back wall)
with four axis-aligned boxes standing at several depths in front of it and a poster on the
back wall. Pixels are ray-cast exactly, so the depth is the true z coordinate of the first
surface hit (metres); at an occlusion edge it belongs to one surface, never a blend.
Colour is averaged over ``supersample`` x ``supersample`` rays per pixel; depth comes from
the ray through the pixel centre.

Coordinates: camera at the origin, x right, y down, z forward (optical axis). The ray of
pixel (row v, column u) is ``((u - cx) / fx, (v - cy) / fy, 1)``, so the ray parameter of a
hit *is* its depth.

Like :mod:`defocuskit.sources._procedural_textures`, everything here uses only IEEE-exact
float operations, so a scene is the same bits on every machine (the committed samples are
checked byte for byte).
"""

from __future__ import annotations

import numpy as np

from defocuskit.sources._procedural_textures import SplitMix64, texture_value

__all__ = ["FX_PER_WIDTH", "pinhole", "draw_scene", "render_scene"]

# NYU-v2's focal length (518.9 px at 640 columns) is about 260 px at 320 columns: the
# horizontal field of view of every procedural scene, whatever its size.
FX_PER_WIDTH = 260.0 / 320.0

_ROOM_SURFACES = ["floor", "ceiling", "left_wall", "right_wall", "back_wall"]


def pinhole(height: int, width: int) -> dict:
    """Pinhole intrinsics (pixels) of a ``height`` x ``width`` scene: square pixels, the
    principal point at the image centre, ``fx = FX_PER_WIDTH * width``.

    For 256 x 320 this is the bundled samples' camera (fx = fy = 260, cx = 159.5, cy = 127.5).
    """
    f = FX_PER_WIDTH * width
    return {"fx_px": f, "fy_px": f, "cx_px": (width - 1) / 2, "cy_px": (height - 1) / 2}


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


def draw_scene(seed: int, *, camera: dict, invalid_screen: bool = False) -> dict:
    """Draw the geometry and materials of one scene from ``seed`` (all lengths in metres).

    Parameters
    ----------
    seed : int
        Any non-negative integer; the same seed gives the same scene on every platform.
    camera : dict
        Pinhole intrinsics (:func:`pinhole`); boxes are placed inside its field of view.
    invalid_screen : bool
        Add a dark screen on the back wall whose depth reads as invalid (what a depth
        sensor misses); its pixels become NaN in :func:`render_scene`.

    Returns
    -------
    dict
        Plain JSON: ``seed``, ``room`` (plane positions), ``light``, ``materials`` (room
        surfaces), ``objects`` (boxes, the poster, the screen) and ``invalid``.
    """
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
        half_view = 0.75 * z0 * camera["cx_px"] / camera["fx_px"]
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
    if invalid_screen:  # a dark screen: the kind of surface a depth sensor misses
        sx = rng.uniform(room["left_wall_x_m"] + 0.3, room["right_wall_x_m"] - 0.9)
        screen = {"texture": "noise", "scale_m": 0.5, "colors": [[0.05, 0.05, 0.06],
                  [0.02, 0.02, 0.03]], "seed": 7, "offset_m": [0.0, 0.0]}
        boxes.append({"kind": "screen", "x_m": [sx, round(sx + 0.6, 3)], "y_m": [-0.3, 0.05],
                      "z_m": [round(back - 0.06, 3), back], "material": screen})
        invalid = {"object": len(boxes) - 1, "face": "front (-z)",
                   "reason": "dark screen: depth stored as 0 (invalid), colour kept"}
    light = {"position_m": [rng.uniform(-1.0, 1.0), round(room["ceiling_y_m"] + 0.6, 3),
                            rng.uniform(1.5, back / 2)]}
    return {"seed": seed, "room": room, "light": light, "materials": materials,
            "objects": boxes, "invalid": invalid}


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
    mats = [p["materials"][k] for k in _ROOM_SURFACES] + [o["material"] for o in p["objects"]]
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


def _rays(height: int, width: int, camera: dict, offset: tuple[float, float]) -> list:
    """Ray directions (3 arrays (H*W,)) through pixel centres shifted by ``offset`` (rows, cols)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    dx = ((u.ravel() + offset[1]) - camera["cx_px"]) / camera["fx_px"]
    dy = ((v.ravel() + offset[0]) - camera["cy_px"]) / camera["fy_px"]
    return [dx, dy, np.ones_like(dx)]


def render_scene(params: dict, *, height: int, width: int, camera: dict,
                 supersample: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast one scene drawn by :func:`draw_scene`.

    Parameters
    ----------
    params : dict
        The scene (:func:`draw_scene`).
    height, width : int
        Image size, pixels.
    camera : dict
        Pinhole intrinsics, pixels (:func:`pinhole`).
    supersample : int
        Colour rays per pixel along each axis (1: one ray, aliased edges; 3: 9 rays).

    Returns
    -------
    rgb : (height, width, 3) uint8 ndarray
        Linear shading quantised to 8 bits.
    depth : (height, width) float64 ndarray, metres
        z of the first hit along the centre ray of each pixel; NaN on the invalid screen.
    """
    d = _rays(height, width, camera, (0.0, 0.0))
    hit = _trace(d, params)
    t, sid, axis, _ = hit
    depth = t.reshape(height, width).copy()
    if params["invalid"] is not None:
        bad = (sid == 5 + params["invalid"]["object"]) & (axis == 2)
        depth[bad.reshape(height, width)] = np.nan
    if supersample == 1:  # the colour ray is the depth ray: trace once
        acc = _shade(d, *hit, params)
    else:
        offsets = (np.arange(supersample) - (supersample - 1) / 2) / supersample
        acc = np.zeros((height * width, 3))
        for oy in offsets:
            for ox in offsets:
                d = _rays(height, width, camera, (oy, ox))
                acc += _shade(d, *_trace(d, params), params)
    rgb = np.clip(acc / supersample**2, 0.0, 1.0)
    return np.floor(rgb * 255.0 + 0.5).astype(np.uint8).reshape(height, width, 3), depth
