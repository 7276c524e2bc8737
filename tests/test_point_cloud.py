"""The landscape view's particle cloud item: the splat kernel's pixels and dirty rectangle, and
that a painted point lands where the plot maps its data coordinates."""
import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import QPointF

from app.views.point_cloud import PointCloudItem, data_bounds, premultiplied_argb, splat

ORANGE = premultiplied_argb(255, 90, 30, 200)


@pytest.fixture
def unit_square_plot(qtbot):
    """A shown 400×300 plot of [0, 1]² holding a PointCloudItem of 5-pixel squares."""
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(400, 300)
    cloud = PointCloudItem(size=5)
    plot.addItem(cloud)
    plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    plot.disableAutoRange()
    plot.show()
    return plot, cloud


def test_splat_draws_squares_at_mapped_pixels_and_clears_the_previous_frame():
    image = np.zeros((20, 30), dtype=np.uint32)
    dirty = np.zeros(4, dtype=np.int64)
    # device x = 10·x + 5, device y = −10·y + 15 (y up in data, down on screen)
    points = np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, 0.0], [100.0, 0.0]])
    counts = np.zeros(image.shape, dtype=np.int32)
    splat(points, 10.0, 0.0, 0.0, -10.0, 5.0, 15.0, 3, ORANGE, image, dirty, counts)
    drawn = np.argwhere(image == ORANGE)
    expected = {(r, c) for cr, cc in ((15, 5), (5, 15)) for r in range(cr - 1, cr + 2)
                for c in range(cc - 1, cc + 2)}
    assert {tuple(p) for p in drawn} == expected        # NaN and off-screen points skipped
    assert np.count_nonzero(image) == 18
    assert list(dirty) == [4, 17, 4, 17]                # rows 4…16, cols 4…16
    # the next frame clears what the last one drew
    splat(points[:1], 10.0, 0.0, 0.0, -10.0, 5.0, 15.0, 3, ORANGE, image, dirty, counts)
    assert np.count_nonzero(image) == 9
    assert list(dirty) == [14, 17, 4, 7]


def test_splat_clips_squares_at_the_image_edge():
    image = np.zeros((10, 10), dtype=np.uint32)
    dirty = np.zeros(4, dtype=np.int64)
    splat(np.array([[0.0, 0.0]]), 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3, ORANGE, image, dirty,
          np.zeros(image.shape, dtype=np.int32))
    assert np.count_nonzero(image) == 4 and list(dirty) == [0, 2, 0, 2]


def test_a_pixel_holding_a_share_of_the_cloud_is_drawn_larger():
    # GD collapses a cloud onto a minimum: 900 of 1000 points on one pixel, 100 spread out
    image = np.zeros((200, 200), dtype=np.uint32)
    dirty = np.zeros(4, dtype=np.int64)
    counts = np.zeros(image.shape, dtype=np.int32)
    spread = np.stack([np.arange(100) * 1.7 + 10.5, np.full(100, 180.5)], axis=1)
    points = np.concatenate([np.full((900, 2), 100.5), spread])
    splat(points, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3, ORANGE, image, dirty, counts)
    # 90 % of the cloud: 3 + 2·(1 + ⌊2·log10(90)⌋) = 3 + 2·4 = 11 pixels
    stack = np.argwhere(image[:150] == ORANGE)
    assert stack.min(axis=0).tolist() == [95, 95] and stack.max(axis=0).tolist() == [105, 105]
    assert len(stack) == 11 * 11
    # single points keep their size (3 rows), and the scratch counts are left zero
    assert np.array_equal(np.flatnonzero(image[:, 12] == ORANGE), [179, 180, 181])
    assert not counts.any()
    # 7 points on one pixel (under STACK_MIN) do not grow, nor does 1 % of 10⁴ spread points
    image[:] = 0
    splat(np.full((7, 2), 50.5), 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3, ORANGE, image, dirty, counts)
    assert np.count_nonzero(image) == 9
    rng = np.random.default_rng(0)
    cloud = rng.normal(100.0, 25.0, size=(10_000, 2))   # at most a few points per pixel
    splat(cloud, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3, ORANGE, image, dirty, counts)
    plain = np.zeros_like(image)
    for x, y in np.floor(cloud).astype(int):
        plain[max(y - 1, 0):max(y + 2, 0), max(x - 1, 0):max(x + 2, 0)] = ORANGE
    assert np.array_equal(image, plain)


def test_data_bounds_ignore_non_finite_points():
    assert data_bounds(np.array([[1.0, -2.0], [np.inf, 5.0], [-3.0, 4.0]])) == (-3.0, 1.0,
                                                                               -2.0, 4.0)
    assert np.isnan(data_bounds(np.array([[np.nan, 0.0]]))[0])


def test_a_painted_point_appears_where_the_plot_maps_it(qtbot, unit_square_plot):
    plot, cloud = unit_square_plot
    cloud.setData(np.array([[0.25, 0.75]]))
    qtbot.wait(50)
    image = plot.grab().toImage()
    scene_point = plot.plotItem.vb.mapViewToScene(QPointF(0.25, 0.75))
    centre = plot.mapFromScene(scene_point)
    colour = image.pixelColor(centre.x(), centre.y())
    # (255, 90, 30) at alpha 200 over pyqtgraph's black background: (200, 71, 24)
    assert (colour.red(), colour.green(), colour.blue()) == (200, 71, 24)
    far = image.pixelColor(centre.x() + 40, centre.y() + 40)
    assert (far.red(), far.green(), far.blue()) == (0, 0, 0)
    assert len(cloud) == 1


def test_an_svg_export_puts_the_points_where_the_screen_does(qtbot, tmp_path, unit_square_plot):
    # the SVG engine ignores drawImage's source rectangle; an earlier version squeezed the whole
    # buffer into the covered rectangle and shifted the cloud
    from PyQt6.QtGui import QImage, QPainter
    from PyQt6.QtSvg import QSvgRenderer

    from app.main_window import _render_svg
    plot, cloud = unit_square_plot
    cloud.setData(np.array([[0.25, 0.75], [0.8, 0.2]]))
    qtbot.wait(50)
    _render_svg(plot, str(tmp_path / "cloud.svg"))
    renderer = QSvgRenderer(str(tmp_path / "cloud.svg"))
    image = QImage(renderer.defaultSize(), QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    scale = image.width() / plot.width()
    for x, y in ((0.25, 0.75), (0.8, 0.2)):
        at = plot.mapFromScene(plot.plotItem.vb.mapViewToScene(QPointF(x, y)))
        colour = image.pixelColor(round(at.x() * scale), round(at.y() * scale))
        assert colour.red() > 150 and colour.blue() < 60, (x, y, colour.getRgb())


def test_a_grab_of_the_enclosing_window_puts_the_points_where_the_screen_does(qtbot):
    # grabbing a parent redirects the plot's painting with an offset; an earlier version
    # applied that offset twice and drew the cloud shifted by the plot's place in the window
    from PyQt6.QtWidgets import QHBoxLayout, QWidget
    parent = QWidget()
    qtbot.addWidget(parent)
    layout = QHBoxLayout(parent)
    layout.setContentsMargins(150, 40, 0, 0)
    plot = pg.PlotWidget()
    layout.addWidget(plot)
    cloud = PointCloudItem(size=5)
    plot.addItem(cloud)
    plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    plot.disableAutoRange()
    parent.resize(550, 340)
    parent.show()
    cloud.setData(np.array([[0.25, 0.75]]))
    qtbot.wait(50)
    image = parent.grab().toImage()
    at = plot.mapTo(parent, plot.mapFromScene(plot.plotItem.vb.mapViewToScene(QPointF(0.25,
                                                                                     0.75))))
    colour = image.pixelColor(at.x(), at.y())
    assert (colour.red(), colour.green(), colour.blue()) == (200, 71, 24)
