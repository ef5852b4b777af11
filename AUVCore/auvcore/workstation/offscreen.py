"""Offscreen rendering for ``auv review``: Slicer's views are drawn on the server, without a display.

On Linux, VTK renders through Mesa's EGL (``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow``,
set here before VTK's rendering loads unless the user chose another window);
llvmpipe draws on the CPU where there is no GPU. :func:`check_offscreen_rendering`
makes sure it works before the server starts, and says what to install when it
does not. ``python -m auvcore.workstation.offscreen`` runs the check (the set-up
script does).

Mesa's CPU renderer and PyTorch's triton each bring their own LLVM: a process
that opened a GL context and then imports triton (torchvision does) crashes. The
server never imports PyTorch; a process that needs both imports PyTorch first.

Example:
    >>> check_offscreen_rendering()   # doctest: +SKIP
    'vtkEGLRenderWindow'
"""

from __future__ import annotations

import ctypes.util
import os
import sys

from ..errors import InputError

EGL_WINDOW = "vtkEGLRenderWindow"
#: Debian / Ubuntu packages that bring Mesa's EGL and its CPU renderer (Debian's chromium depends on them too).
LINUX_PACKAGES = ("libegl1", "libegl-mesa0", "libgl1-mesa-dri")
INSTALL_HINT = (f"install Mesa's EGL: sudo apt-get install {' '.join(LINUX_PACKAGES)} (Debian, Ubuntu; "
                "mesa-libEGL mesa-dri-drivers on Fedora), or set VTK_DEFAULT_OPENGL_WINDOW to a render window "
                "that works here (vtkOSOpenGLRenderWindow with an OSMesa build of VTK)")


def use_offscreen_window() -> str:
    """Choose EGL for VTK's render windows on Linux (unless ``VTK_DEFAULT_OPENGL_WINDOW`` is set); the choice."""
    if sys.platform.startswith("linux"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", EGL_WINDOW)
    return os.environ.get("VTK_DEFAULT_OPENGL_WINDOW", "VTK's default")


def check_offscreen_rendering() -> str:
    """Open an offscreen render window; the window class that VTK uses.

    Raises:
        InputError: saying what to install, when EGL is missing or cannot render.
    """
    chosen = use_offscreen_window()
    if chosen == EGL_WINDOW and ctypes.util.find_library("EGL") is None:
        raise InputError("libEGL.so.1", f"is missing, so the views cannot be drawn on this server: {INSTALL_HINT}")
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 (registers the OpenGL render windows)
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    if not window.SupportsOpenGL():
        raise InputError(window.GetClassName(), f"cannot render offscreen (no OpenGL context): {INSTALL_HINT}")
    return window.GetClassName()


if __name__ == "__main__":
    try:
        print(f"offscreen rendering works: {check_offscreen_rendering()}")
    except InputError as error:
        print(f"auv review: error: {error}", file=sys.stderr)
        sys.exit(2)
