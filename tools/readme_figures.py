"""Makes the README's pictures from a real demo run: docs/demo_panel.png, docs/demo_curves.png.

    python tools/readme_figures.py            # trains the demo model (about 3 min on 2 cores)
    python tools/readme_figures.py --from demo_output   # reuse an existing `fcn-keras demo` run

The panel is the demo's first prediction panel (image, truth, prediction, legend, per-image
mean IU) and the curves are the demo's training curves, both copied at 1:1 when they are at
most `--max-width` pixels wide (shrunk with a high-quality filter otherwise), written
atomically.
"""

import argparse
import glob
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _shrink(src, dst, max_width):
    from PIL import Image

    from fcn_keras._io import atomic_write

    with Image.open(src) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
        atomic_write(dst, lambda tmp: im.save(tmp, format="PNG", optimize=True))
    return dst


def make(run_dir, out_dir, max_width=720):
    """Copies the first prediction panel and the curves of demo run `run_dir` into `out_dir`.

    Returns:
        [panel path, curves path].
    Raises:
        FileNotFoundError: `run_dir` holds no panel or no curves.png.
    """
    panels = sorted(glob.glob(os.path.join(run_dir, "predictions", "*_panel.png")))
    curves = glob.glob(os.path.join(run_dir, "**", "curves.png"), recursive=True)
    if not panels or not curves:
        raise FileNotFoundError(f"Expected a demo run with predictions/*_panel.png and curves.png. "
                                f"Received: run_dir={run_dir!r}")
    return [_shrink(panels[0], os.path.join(out_dir, "demo_panel.png"), max_width),
            _shrink(curves[0], os.path.join(out_dir, "demo_curves.png"), max_width)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="run_dir", help="an existing demo output folder")
    p.add_argument("--out", default=os.path.join(ROOT, "docs"))
    p.add_argument("--max-width", type=int, default=720)
    args = p.parse_args(argv)
    run_dir = args.run_dir
    if run_dir is None:
        from fcn_keras.cli import demo

        run_dir = tempfile.mkdtemp(prefix="fcn-demo-")
        demo.run(run_dir, formats=())
    for path in make(run_dir, args.out, args.max_width):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
