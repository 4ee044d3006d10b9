"""The package namespace: public re-exports stay what they say, whatever was imported first."""

import importlib
import pkgutil
import types

import defocuskit


def _import_every_submodule() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(defocuskit.__path__, "defocuskit.")]
    for name in names:
        importlib.import_module(name)
    return names


def test_render_is_the_function_after_importing_every_submodule():
    names = _import_every_submodule()
    assert "defocuskit.blur" in names and "defocuskit.blur.gather" in names
    from defocuskit import render
    from defocuskit.blur import render as engine_render

    assert isinstance(render, types.FunctionType)
    assert render is engine_render
    assert defocuskit.render is engine_render


def test_no_submodule_shadows_a_public_name():
    # a submodule named like a re-export would replace it as a package attribute on import
    submodules = {m.name for m in pkgutil.iter_modules(defocuskit.__path__)}
    assert not submodules & set(defocuskit.__all__)


def test_camera_is_the_class():
    _import_every_submodule()
    from defocuskit.optics import Camera

    assert defocuskit.Camera is Camera
