"""Interactive explorers for trained models, built with ipywidgets.

Each explorer has a part that works without a Python kernel: every image it can show is decoded
once, and the controls select among them through links that run in the browser (``jslink``). In
Jupyter that part responds at once; in the rendered book, where the widgets' state is embedded in
the page, it still works. The traversal explorer also has sliders for every coordinate of the code,
which decode a new image on each change and so need a running kernel.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import ipywidgets as widgets
import torch

from disentangle.viz import Decoder, Swapper, check_images, image_strip, traversal_grid


def png(image: torch.Tensor, scale: int = 3) -> bytes:
    """One image (C, H, W) in [0, 1] as PNG bytes, enlarged ``scale`` times without blurring."""
    buffer = io.BytesIO()
    image_strip(image[None], scale).save(buffer, format="PNG")
    return buffer.getvalue()


def _image(image: torch.Tensor, scale: int) -> widgets.Image:
    return widgets.Image(value=png(image, scale), format="png")


def _choices(prefix: str, labels: Sequence[object]) -> list[tuple[str, int]]:
    return [(f"{prefix} {label}", i) for i, label in enumerate(labels)]


def traversal_explorer(
    decode: Decoder,
    base_code: torch.Tensor,
    value_range: tuple[float, float] = (-3.0, 3.0),
    dims: Sequence[int] | None = None,
    steps: int = 13,
    scale: int = 3,
) -> widgets.Tab:
    """Explore a decoder around ``base_code`` (D,).

    The first tab, *traversal*, has a dropdown of dimensions and a slider over ``steps`` values in
    ``value_range``; it shows the image decoded with that one coordinate changed, from images
    decoded in advance, so it works in the rendered book too. The second tab, *every coordinate*,
    has a slider per coordinate in ``dims`` (default: all) and decodes the code they set each time
    one moves (it needs a kernel). Returns the ``Tab``; its ``links`` attribute lists the
    browser-side links from the controls to the images.
    """
    device = torch.as_tensor(base_code).device
    base = torch.as_tensor(base_code).detach().float()
    low, high = (float(v) for v in value_range)
    if not low < high or steps < 2:
        raise ValueError(f"Need value_range low < high and steps >= 2; got {value_range}, {steps}.")
    dims = list(range(len(base))) if dims is None else [int(d) for d in dims]
    values = torch.linspace(low, high, steps)
    grid = traversal_grid(decode, base, dims, values)

    dimension = widgets.Dropdown(options=_choices("dim", dims), description="dimension")
    value = widgets.SelectionSlider(options=[f"{v:+.2f}" for v in values.tolist()],
                                    index=steps // 2, description="value")
    rows = [widgets.Stack([_image(image, scale) for image in row], selected_index=steps // 2)
            for row in grid]
    shown = widgets.Stack(rows, selected_index=0)
    links = [widgets.jslink((dimension, "index"), (shown, "selected_index"))]
    links += [widgets.jslink((value, "index"), (row, "selected_index")) for row in rows]
    traversal = widgets.HBox([widgets.VBox([dimension, value]), shown])

    sliders = [
        widgets.FloatSlider(value=min(max(float(base[d]), low), high), min=low, max=high,
                            step=(high - low) / (steps - 1) / 4, description=f"dim {d}",
                            continuous_update=False)
        for d in dims
    ]
    live = widgets.Image(format="png")

    def redraw(_change: object = None) -> None:
        code = base.clone()
        for d, slider in zip(dims, sliders):
            code[d] = slider.value
        with torch.no_grad():
            live.value = png(check_images(decode(code[None].to(device)), 1, "decode")[0], scale)

    for slider in sliders:
        slider.observe(redraw, names="value")
    redraw()
    free = widgets.HBox([widgets.VBox(sliders), live])

    tabs = widgets.Tab([traversal, free], selected_index=0)
    tabs.set_title(0, "traversal")
    tabs.set_title(1, "every coordinate (needs a kernel)")
    # Kept on the explorer so that callers (and the tests) can see which control drives what.
    tabs.links = tuple(links)
    return tabs


def swap_explorer(
    swap: Swapper,
    images_a: torch.Tensor,
    images_z: torch.Tensor,
    scale: int = 3,
) -> widgets.HBox:
    """Explore DisTIB's code swaps: pick the image that gives the label code A and the image that
    gives the sample code Z, and see the image decoded from the pair.

    Every pair is decoded once, with ``swap(images_a, images_z)`` (images (n_a, n_z, C, H, W)),
    and the pickers select among them in the browser, so the explorer works in the rendered book
    as in Jupyter. Returns the ``HBox``, with the browser-side links in its ``links`` attribute.
    """
    images_a, images_z = torch.as_tensor(images_a).detach(), torch.as_tensor(images_z).detach()
    with torch.no_grad():
        grid = swap(images_a, images_z)
    expected = (len(images_a), len(images_z), *images_a.shape[1:])
    if not isinstance(grid, torch.Tensor) or tuple(grid.shape) != expected:
        got = tuple(grid.shape) if isinstance(grid, torch.Tensor) else type(grid).__name__
        raise ValueError(f"swap must return images {expected}; got {got}.")
    grid = grid.detach().float().cpu()

    pick_a = widgets.Dropdown(options=_choices("image", range(len(images_a))), description="A from")
    pick_z = widgets.Dropdown(options=_choices("image", range(len(images_z))), description="Z from")
    source_a = widgets.Stack([_image(x.float().cpu(), scale) for x in images_a], selected_index=0)
    source_z = widgets.Stack([_image(x.float().cpu(), scale) for x in images_z], selected_index=0)
    rows = [widgets.Stack([_image(image, scale) for image in row], selected_index=0)
            for row in grid]
    result = widgets.Stack(rows, selected_index=0)
    links = [
        widgets.jslink((pick_a, "index"), (source_a, "selected_index")),
        widgets.jslink((pick_z, "index"), (source_z, "selected_index")),
        widgets.jslink((pick_a, "index"), (result, "selected_index")),
        *(widgets.jslink((pick_z, "index"), (row, "selected_index")) for row in rows),
    ]
    caption = widgets.Label("decoded from A of the first and Z of the second")
    explorer = widgets.HBox([widgets.VBox([pick_a, source_a]), widgets.VBox([pick_z, source_z]),
                             widgets.VBox([caption, result])])
    explorer.links = tuple(links)
    return explorer
