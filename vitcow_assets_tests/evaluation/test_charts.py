"""The probe's curve chart with a single point: a dataset too small for any efficiency subset
leaves only the whole training split (the demo's two short videos do), and the chart must
still be drawn, that point in the middle of the axis (it once divided by the empty range)."""

import numpy as np

from vitcow_assets.evaluation.charts import COLOURS, MARGIN, PANEL_H, PANEL_W, curve_chart


def _row(train_crops: float, values: tuple[float, float, float]) -> dict:
    row = {"subset_size": "train", "train_crops": train_crops, "repeats": 1, "chance_balanced_accuracy": 0.25}
    for metric, value in zip(("balanced_accuracy", "accuracy", "f1_macro"), values):
        row[metric], row[f"{metric}_se"] = value, None
    return row


def test_a_curve_of_one_point_is_drawn_in_the_middle_of_the_axis():
    values = (0.2, 0.5, 0.8)
    image = curve_chart([_row(4, values)]).image
    left, right, top, bottom = MARGIN + 20, 2 * PANEL_W - 50, 110, PANEL_H + 50
    middle = (left + right) // 2
    for colour, value in zip(COLOURS, values):
        y = round(bottom - value * (bottom - top))
        assert tuple(image[y, middle]) == tuple(colour), (value, image[y, middle])


def test_several_points_span_the_axis():
    image = curve_chart([_row(8, (0.2, 0.5, 0.8)), _row(16, (0.3, 0.6, 0.9))]).image
    left, right, top, bottom = MARGIN + 20, 2 * PANEL_W - 50, 110, PANEL_H + 50
    assert tuple(image[round(bottom - 0.2 * (bottom - top)), left]) == tuple(COLOURS[0])
    assert tuple(image[round(bottom - 0.9 * (bottom - top)), right]) == tuple(COLOURS[2])
