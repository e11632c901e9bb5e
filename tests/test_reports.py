import xml.etree.ElementTree as ET

from mlcycle.reports import HtmlReport, bar_chart, histogram


def test_charts_are_well_formed_svg_with_one_mark_per_value():
    svg = bar_chart(["a", "b", "<c>"], [1, 4, 2], title="t & u")
    root = ET.fromstring(svg)
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 3
    hist = ET.fromstring(histogram([0.0, 1.0, 1.0, 2.0, float("nan")], bins=4, title="h"))
    titles = [t.text for t in hist.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(int(t.rsplit(":", 1)[1]) for t in titles) == 4  # NaN left out


def test_bar_lengths_are_proportional():
    root = ET.fromstring(bar_chart(["a", "b"], [1, 4]))
    widths = [float(r.get("width")) for r in root.findall("{http://www.w3.org/2000/svg}rect")]
    assert abs(widths[1] / widths[0] - 4) < 1e-6


def test_report_escapes_text_and_saves_atomically(tmp_path):
    report = HtmlReport("Title <x>")
    report.heading("Section & more")
    report.table([[1, 2.5]], header=["<a>", "b"])
    report.svg(bar_chart(["a"], [1]))
    path = report.save(tmp_path / "r.html")
    html = path.read_text()
    assert "&lt;x&gt;" in html and "<x>" not in html and "&lt;a&gt;" in html
    assert html.count("<svg") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
