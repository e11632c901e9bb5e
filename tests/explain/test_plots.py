from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import pytest

from mlcycle.errors import SpecValidationError
from mlcycle.explain import (
    add_report_section,
    explain,
    plot_bar,
    plot_beeswarm,
    plot_waterfall,
)
from mlcycle.reports import HtmlReport

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000
    assert data.startswith(PNG_SIGNATURE)
    assert data[12:16] == b"IHDR" and data.endswith(b"IEND\xaeB`\x82")


def _assert_svg(path):
    root = ET.fromstring(path.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert path.stat().st_size > 1000


@pytest.fixture(scope="module")
def exp(regressor, tracks):
    return explain(regressor, tracks, device="cpu")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_beeswarm_bar_and_waterfall_files_are_valid(exp, tmp_path, suffix):
    check = _assert_png if suffix == ".png" else _assert_svg
    top = int(exp.predictions.argmax())
    paths = [
        plot_beeswarm(exp, tmp_path / f"beeswarm{suffix}", max_rows=200),
        plot_bar(exp, tmp_path / f"bar{suffix}", method="mean_sq"),
        plot_waterfall(exp, tmp_path / "rows" / f"waterfall{suffix}", top),
    ]
    for path in paths:
        check(path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["beeswarm" + suffix, "bar" + suffix, "rows", "waterfall" + suffix]
    )  # no temporary files left behind


def test_svg_pictures_name_the_features(exp, tmp_path):
    # matplotlib draws text as paths; the feature names survive as the SVG's text comments
    svg = plot_bar(exp, tmp_path / "bar.svg").read_text()
    for feature in exp.feature_names:
        assert feature in svg


def test_plots_close_their_figures(exp, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_waterfall(exp, tmp_path / "w.png", label="track0009")
    plot_beeswarm(exp, tmp_path / "b.png", max_rows=50)
    assert plt.get_fignums() == before


def test_a_bad_suffix_or_row_is_rejected(exp, tmp_path):
    with pytest.raises(SpecValidationError) as info:
        plot_bar(exp, tmp_path / "bar.jpg")
    assert info.value.field == "path"
    with pytest.raises(SpecValidationError):
        plot_waterfall(exp, tmp_path / "w.png")  # no row named


def test_multi_output_plots_need_an_output(classifier, tmp_path):
    model, X = classifier
    multi = explain(model, X[:80], feature_names=list("abcd"), device="cpu")
    with pytest.raises(SpecValidationError) as info:
        plot_beeswarm(multi, tmp_path / "b.png")
    assert info.value.field == "output"
    _assert_png(plot_bar(multi, tmp_path / "bar.png", output="label2"))


@pytest.mark.parametrize("image_format", ["png", "svg"])
def test_report_section_inlines_the_pictures(exp, tmp_path, image_format):
    report = HtmlReport("Explanations")
    add_report_section(report, exp, label="track0123", max_rows=300, image_format=image_format)
    html = report.save(tmp_path / "report.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org/", "")  # nothing to fetch
    assert "https://" not in html
    assert html.count("<svg") >= 3  # beeswarm, bar, waterfall
    assert "track0123" in html
    for feature in exp.feature_names:
        assert f"<td>{feature}</td>" in html
    if image_format == "png":
        images = re.findall(r'href="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
        assert len(images) == 3
        assert all(base64.b64decode(i).startswith(PNG_SIGNATURE) for i in images)
    else:  # matplotlib's own SVG documents, without their XML prologs
        assert "<?xml" not in html and "<!DOCTYPE svg" not in html
        assert html.count('<g id="figure_1">') == 3
    with pytest.raises(SpecValidationError):
        add_report_section(report, exp, image_format="gif")


def test_drawing_switches_to_agg_and_back(exp, tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    original = matplotlib.get_backend()
    plt.switch_backend("svg")  # stands in for an interactive backend with no figure open
    try:
        seen = []
        from mlcycle.explain.plots import render

        render(lambda: seen.append(matplotlib.get_backend()), "png")
        assert seen == ["agg"]
        assert matplotlib.get_backend() == "svg"
        _assert_png(plot_bar(exp, tmp_path / "bar.png"))
    finally:
        plt.switch_backend(original)
