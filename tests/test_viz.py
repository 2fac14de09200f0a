"""The book's figures and explorers, driven by tiny stand-in models whose output is known."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.text import Annotation
from PIL import Image

from disentangle import info, viz

matplotlib.use("Agg")

SIZE = 6


def decode(codes: torch.Tensor) -> torch.Tensor:
    """A decoder that can be read back: pixel (0, k) of the image is a squashed code[k], the rest
    is black, so each traversal step is visible in exactly one pixel."""
    images = torch.zeros(len(codes), 1, SIZE, SIZE)
    images[:, 0, 0, : codes.shape[1]] = torch.sigmoid(codes)
    return images


def swap(x_a: torch.Tensor, x_z: torch.Tensor) -> torch.Tensor:
    """Top half of the image from x_a, bottom half from x_z: a perfect swap of two codes."""
    out = x_z[None].repeat(len(x_a), 1, 1, 1, 1).clone()
    out[:, :, :, : SIZE // 2] = x_a[:, None, :, : SIZE // 2]
    return out


def sources(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    matplotlib.pyplot.close("all")


def test_traversal_grid_changes_one_coordinate_per_row():
    base = torch.tensor([0.5, -1.0, 2.0])
    values = torch.linspace(-2, 2, 5)
    grid = viz.traversal_grid(decode, base, dims=[2, 0], values=values)
    assert grid.shape == (2, 5, 1, SIZE, SIZE)
    for row, dim in enumerate([2, 0]):
        expected = base.repeat(5, 1)
        expected[:, dim] = values
        assert torch.allclose(grid[row, :, 0, 0, :3], torch.sigmoid(expected))


def test_traversal_grid_defaults_and_errors():
    grid = viz.traversal_grid(decode, torch.zeros(4))
    assert grid.shape == (4, 9, 1, SIZE, SIZE)
    assert torch.allclose(grid[1, :, 0, 0, 1], torch.sigmoid(torch.linspace(-2, 2, 9)))
    with pytest.raises(ValueError, match="indices into a code of 4"):
        viz.traversal_grid(decode, torch.zeros(4), dims=[4])
    with pytest.raises(ValueError, match="one code"):
        viz.traversal_grid(decode, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"decode must return images \(n=9"):
        viz.traversal_grid(lambda c: c, torch.zeros(1), values=torch.linspace(0, 1, 9))


def test_traversal_figure_labels_rows_and_columns():
    values = torch.linspace(-2, 2, 5)
    grid = viz.traversal_grid(decode, torch.zeros(3), dims=[0, 2], values=values)
    fig = viz.traversal_figure(grid, values=values, dims=[0, 2], title="walk")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dim 0", "dim 2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-2.0", "-1.0", "+0.0", "+1.0", "+2.0"]
    assert ax.get_title() == "walk" and len(ax.images) == 1
    with pytest.raises(ValueError, match="3 values given for 5 columns"):
        viz.traversal_figure(grid, values=[0, 1, 2])


def test_traversal_gif_has_one_frame_per_step_there_and_back(tmp_path):
    values = torch.linspace(-3, 3, 6)
    path = viz.save_traversal_gif(decode, torch.zeros(3), tmp_path / "sub" / "walk.gif",
                                  values=values, scale=2)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * 6 - 2
        assert gif.info["loop"] == 0
        # Three dimensions side by side, each 6 pixels wide with 2 between, enlarged twice.
        assert gif.size == ((3 * SIZE + 2 * 2) * 2, SIZE * 2)
        first = np.asarray(gif.convert("L"))
        gif.seek(5)  # the last value, +3
        last = np.asarray(gif.convert("L"))
    assert first[0, 0] < 30 and last[0, 0] > 225  # sigmoid(-3) = 0.05, sigmoid(3) = 0.95


def test_image_strip_and_check_images():
    images = torch.stack([torch.zeros(1, SIZE, SIZE), torch.ones(1, SIZE, SIZE)])
    strip = np.asarray(viz.image_strip(images, scale=3, pad=1))
    assert strip.shape == (SIZE * 3, (2 * SIZE + 1) * 3)
    assert strip[0, 0] == 0 and strip[0, -1] == 255 and strip[0, SIZE * 3] == 255  # pad is white
    checked = viz.check_images(images.double(), 2, "decode")
    assert checked.dtype == torch.float32 and torch.equal(checked, images)
    with pytest.raises(ValueError, match="swap returned 2 channels"):
        viz.check_images(torch.zeros(2, 2, SIZE, SIZE), 2, "swap")


def test_swap_grid_puts_sources_on_the_edges():
    x_a, x_z = sources(2, 0), sources(3, 1)
    fig = viz.swap_grid(swap, x_a, x_z, title="swaps")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Z from", "A 0", "A 1"]
    canvas = ax.images[0].get_array()
    step = SIZE + 2
    assert np.allclose(canvas[0:SIZE, step : step + SIZE], x_z[0, 0])  # first row: Z sources
    assert np.allclose(canvas[step : step + SIZE, 0:SIZE], x_a[0, 0])  # first column: A sources
    # A of x_a[1] and Z of x_z[2]:
    cell = canvas[2 * step : 2 * step + SIZE, 3 * step : 3 * step + SIZE]
    assert np.allclose(cell, swap(x_a, x_z)[1, 2, 0])
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="swap must return images"):
        viz.swap_grid(lambda a, z: a, x_a, x_z)


HISTORY = {
    "step": [0, 10, 20, 30],
    "mi_x_a": [4.0, 3.0, 2.5, 2.0],
    "mi_a_y": [0.5, 1.5, 2.0, 2.2],
    "reconstruction": [1000.0, 100.0, 20.0, 10.0],
    "kl_z": [0.1, float("nan"), 0.3, 0.2],
}


def test_information_plane_colours_points_by_step():
    fig = viz.information_plane(HISTORY, xlabel="I(X;A)")
    ax = fig.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    assert np.allclose(points.get_offsets(), np.c_[HISTORY["mi_x_a"], HISTORY["mi_a_y"]])
    assert np.allclose(points.get_array(), HISTORY["step"])
    assert ax.get_xlabel() == "I(X;A)" and ax.get_ylabel() == "mi_a_y"
    assert len(fig.axes) == 2, "the colour bar of steps is missing"
    with pytest.raises(KeyError, match="no 'mi_x_z'"):
        viz.information_plane(HISTORY, x="mi_x_z")


def test_training_curves_one_panel_per_term():
    fig = viz.training_curves(HISTORY, ncols=3)
    assert [ax.get_title() for ax in fig.axes] == ["mi_x_a", "mi_a_y", "reconstruction", "kl_z"]
    scales = {ax.get_title(): ax.get_yscale() for ax in fig.axes}
    assert scales["reconstruction"] == "log" and scales["mi_x_a"] == "linear"
    kl = fig.axes[3].lines[0]
    assert list(kl.get_xdata()) == [0, 20, 30], "the NaN entry should be skipped"
    with pytest.raises(ValueError, match="history\\['bad'\\] has 2 entries"):
        viz.training_curves({"step": [0, 1, 2], "bad": [1.0, 2.0]})


def test_metric_bars_mean_and_std_over_seeds():
    results = {
        "DisTIB": {"MIG": [0.4, 0.6], "DCI": [0.7, 0.9, 0.8]},
        "VIB": {"MIG": [0.1, 0.3], "DCI": [0.2]},
    }
    fig = viz.metric_bars(results)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2
    assert np.allclose([b.get_height() for b in bars[0]], [0.5, 0.8])
    assert np.allclose([b.get_height() for b in bars[1]], [0.2, 0.2])
    error_lines = [c for c in ax.containers if not isinstance(c, BarContainer)]
    first = error_lines[0].lines[2][0].get_segments()
    assert np.allclose([s[1, 1] - s[0, 1] for s in first], [2 * np.std([0.4, 0.6], ddof=1),
                                                            2 * np.std([0.7, 0.9, 0.8], ddof=1)])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MIG", "DCI"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["DisTIB", "VIB"]
    seeds = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert seeds == 8


def _study_record():
    from disentangle import studies

    values = {"a": [0.5, 0.7, 0.9], "b": [0.6, 0.6, 0.6]}
    entries = {f"{g}/seed{s}": {"key": f"{g}/seed{s}", "group": g, "seed": s, "status": "finished",
                                "metrics": {"m": v}} for g, vs in values.items()
               for s, v in enumerate(vs)}
    entries["a/seed3"] = {"key": "a/seed3", "group": "a", "seed": 3, "status": "failed",
                          "metrics": {}}

    class Study:
        groups, metrics = {"a": {"model": "distib"}, "b": {"model": "vib"}}, ("m",)
        comparisons = (studies.Comparison("a", "b", "m"),)

    summary, comparisons = studies.summarise(Study, entries)
    return {"study": {"metrics": ["m"]}, "runs": list(entries.values()), "summary": summary,
            "comparisons": comparisons}


def test_study_intervals_show_every_seed_and_the_mean():
    record = _study_record()
    fig = viz.study_intervals(record, "m")
    ax = fig.axes[0]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [len(d.get_offsets()) for d in dots] == [3, 3]  # the failed run is no dot
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    means = [line.get_ydata()[0] for line in ax.lines if len(set(line.get_xdata())) == 2]
    assert means == pytest.approx([0.7, 0.6])
    with pytest.raises(ValueError, match="reports no 'n'"):
        viz.study_intervals(record, "n")


def test_paired_lines_join_each_seed_and_mark_the_sign():
    fig = viz.paired_lines(_study_record(), "a", "b", "m")
    lines = fig.axes[0].lines
    assert len(lines) == 3
    assert [line.get_linestyle() for line in lines] == ["--", "-", "-"]  # 0.5 < 0.6 < 0.7, 0.9
    with pytest.raises(ValueError, match="No group 'c'"):
        viz.paired_lines(_study_record(), "c", "b", "m")


def test_differences_along_a_setting_mark_each_seed_and_the_interval():
    record = _study_record()
    fig = viz.differences_along(record, {"a − b": [(1.0, "a", "b")]}, "m", "steps")
    ax = fig.axes[0]
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sorted(dots[0].get_offsets()[:, 1]) == pytest.approx([-0.1, 0.1, 0.3])
    mean = [line for line in ax.lines if line.get_marker() == "o"][0]
    assert mean.get_ydata()[0] == pytest.approx(0.1)
    assert ax.get_xlabel() == "steps" and ax.get_ylabel() == "difference in m"
    with pytest.raises(ValueError, match="compares no b - a"):
        viz.differences_along(record, {"b − a": [(1.0, "b", "a")]}, "m", "steps")


def test_span_writes_the_range_and_refuses_no_values():
    assert viz.span([0.734, 0.5, 0.61]) == "0.50 to 0.73"
    assert viz.span(iter([155.2, 154.3]), digits=0) == "154 to 155"
    with pytest.raises(ValueError, match="no values"):
        viz.span([])


def test_bayesian_networks_side_by_side():
    g_in, g_out = info.distib_graphs()
    fig = viz.bayesian_networks({"$G_{in}$": g_in, "$G_{out}$": g_out})
    assert [ax.get_title() for ax in fig.axes] == ["$G_{in}$", "$G_{out}$"]
    for ax in fig.axes:
        labels = {t.get_text() for t in ax.texts if not isinstance(t, Annotation)}
        arrows = [t for t in ax.texts if isinstance(t, Annotation)]
        assert labels == {"X", "Y", "A", "Z"} and len(arrows) == 3


# --- Explorers --------------------------------------------------------------------------------

widgets = pytest.importorskip("ipywidgets")
explorers = pytest.importorskip("disentangle.widgets")


def shown(image: widgets.Image) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image.value)))


def links_from(explorer, source) -> list:
    return [link for link in explorer.links if link.source[0] is source]


def test_traversal_explorer_static_part_holds_every_step():
    explorer = explorers.traversal_explorer(decode, torch.zeros(3), value_range=(-3, 3),
                                            dims=[0, 2], steps=5, scale=1)
    assert explorer.get_title(0) == "traversal"
    (controls, stack) = explorer.children[0].children
    dimension, value = controls.children
    assert [label for label, _ in dimension.options] == ["dim 0", "dim 2"]
    assert value.options == ("-3.00", "-1.50", "+0.00", "+1.50", "+3.00")
    assert len(stack.children) == 2 and all(len(row.children) == 5 for row in stack.children)
    # Row 1 walks dim 2: its pixel (0, 2) follows the value, pixel (0, 0) stays at sigmoid(0).
    pixels = [shown(image)[0] for image in stack.children[1].children]
    expected = torch.sigmoid(torch.linspace(-3, 3, 5)).numpy() * 255
    assert np.allclose([p[2] for p in pixels], expected, atol=1)
    assert all(abs(int(p[0]) - 128) <= 1 for p in pixels)
    # The controls drive the stacks in the browser, so the page works without a kernel.
    assert {(link.target[0], link.target[1]) for link in links_from(explorer, dimension)} == {
        (stack, "selected_index")}
    assert {link.target[0] for link in links_from(explorer, value)} == set(stack.children)


def test_traversal_explorer_sliders_redecode_live():
    explorer = explorers.traversal_explorer(decode, torch.zeros(3), dims=[1, 2], scale=1)
    sliders_box, live = explorer.children[1].children
    assert [s.description for s in sliders_box.children] == ["dim 1", "dim 2"]
    before = shown(live).copy()
    assert abs(int(before[0, 1]) - 128) <= 1
    sliders_box.children[0].value = 2.0
    after = shown(live)
    assert abs(int(after[0, 1]) - round(float(torch.sigmoid(torch.tensor(2.0))) * 255)) <= 1
    assert after[0, 2] == before[0, 2], "only the moved coordinate may change"


def test_swap_explorer_holds_every_pair_and_links_the_pickers():
    x_a, x_z = sources(2, 0), sources(3, 1)
    explorer = explorers.swap_explorer(swap, x_a, x_z, scale=1)
    (pick_a, source_a), (pick_z, source_z), (_, result) = (box.children
                                                             for box in explorer.children)
    assert len(pick_a.options) == 2 and len(pick_z.options) == 3
    grid = swap(x_a, x_z)
    for i in range(2):
        for j in range(3):
            expected = np.rint(grid[i, j, 0].numpy() * 255)
            assert np.allclose(shown(result.children[i].children[j]), expected, atol=1)
    assert np.allclose(shown(source_z.children[2]), np.rint(x_z[2, 0].numpy() * 255), atol=1)
    assert {link.target[0] for link in links_from(explorer, pick_a)} == {source_a, result}
    assert {link.target[0] for link in links_from(explorer, pick_z)} == {source_z, *result.children}
    with pytest.raises(ValueError, match="swap must return images"):
        explorers.swap_explorer(lambda a, z: a, x_a, x_z)


def test_recorded_traversals_crop_and_title_each_group(tmp_path):
    image = np.ones((40, 60, 3))
    image[10:20, 5:45] = 0.0  # the ink; the rest is the white margin to crop
    matplotlib.pyplot.imsave(tmp_path / "gan.png", image)
    record = {"traversals": {"gan": {"seed": 3, "file": "gan.png"}}}
    fig = viz.recorded_traversals(record, tmp_path, columns=2)
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape[:2] == (10, 40)
    assert fig.axes[0].get_title() == "gan (median seed 3)"
    # 5 inches a column; the 10 x 40 image needs 1.25 inches of it, and 0.3 for the title
    assert tuple(fig.get_size_inches()) == pytest.approx((10.0, 1.55))
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="holds no traversals"):
        viz.recorded_traversals({"runs": []}, tmp_path)


def test_study_plots_name_a_metric_as_the_book_does():
    record = _study_record()
    assert viz.study_intervals(record, "m").axes[0].get_ylabel() == "m"  # no book name: as is
    assert viz.metric_label("beta_vae_eval") == "Z-diff (BetaVAE score)"
    assert viz.metric_label("paper_z_diff") == "Z-diff, paper's protocol"


def test_summary_and_paired_tables_hold_the_record():
    record = _study_record()
    table = viz.summary_table(record, {"M": "m"}, scale=100, digits=1)
    # a: 50, 70, 90 -> mean 70, t-interval half-width t(0.975, 2) * 20 / sqrt(3) = 49.7
    assert table.loc["a", "M"] == "70.0 ± 49.7" and table.loc["b", "M"] == "60.0 ± 0.0"
    paired = viz.paired_table(record)
    assert list(paired.columns) == ["seed 0", "seed 1", "seed 2"]
    assert paired.iloc[0].tolist() == [-0.1, 0.1, 0.3]  # a - b, seed by seed
