"""The HTML report as text: self-contained (no URL to fetch), every section present, user names escaped,
the table's rows are the summary's rows; `Report._repr_html_` gives the same page."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import seeds
import torch
from torch import nn

import aelab
from aelab.render.html import render_html
from aelab.render.units import shape


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    return parser


def test_sections_and_no_external_references() -> None:
    report = aelab.inspect(seeds.SeqVAE(), (2, 12, 201))
    page = render_html(report)
    parsed = _parse(page)
    ids = {attrs.get("id") for _, attrs in parsed.tags}
    assert {"verdict", "hourglass", "graph", "layers"} <= ids
    rows = [attrs for tag, attrs in parsed.tags if tag == "tr" and "data-cid" in attrs]
    assert [int(str(r["data-cid"])) for r in rows] == [r.cid for r in report.summary.rows]
    assert [int(str(r["data-depth"])) for r in rows] == [r.depth for r in report.summary.rows]
    for tag, attrs in parsed.tags:  # nothing points outside the page
        for key in ("src", "href", "xlink:href", "action", "data"):
            value = attrs.get(key)
            assert value is None or value.startswith("#") or value.startswith("data:"), (tag, key, value)
    assert not re.search(r"(https?:)?//[\w.-]+\.\w+/", re.sub(r'xmlns(:\w+)?="[^"]*"', "", page).replace(
        "http://www.w3.org", "")), "an absolute URL in the page"
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert report.bottleneck.verdict.split(":")[0] in page
    assert len(parsed.scripts) == 1


def test_names_are_escaped() -> None:
    model = nn.Sequential()
    model.add_module("<script>alert(1)</script>", nn.Linear(6, 3))
    model.add_module("<img src=x onerror=alert(2)>", nn.Linear(3, 6))
    page = render_html(aelab.inspect(model, (2, 6)))
    parsed = _parse(page)
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert not any(t == "img" for t, _ in parsed.tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page and "<img src=x" not in page


def test_repr_html_is_the_report() -> None:
    report = aelab.inspect(seeds.AE(), (1, 784))
    page = report._repr_html_()
    assert 'class="aelab-report"' in page and 'id="hourglass"' in page
    # CSS scoped to the report, so a notebook keeps its own style
    css = re.search(r"<style>(.*?)</style>", page, re.S)
    assert css is not None
    selectors = [s.strip() for s in re.findall(r"([^{}]+)\{", css.group(1))]
    assert all(all(part.strip().startswith(".aelab-report") for part in s.split(",")) for s in selectors)


def test_failed_forward_shows_the_error_and_the_doctors_fix() -> None:
    model = __import__("broken").ConvNet2dWrong()
    report = aelab.inspect(model, (1, 1, 28, 28))
    page = render_html(report)
    # the failing layer is the innermost module (fc), not the torch function inside it, as the text table says
    assert "Forward failed in fc: RuntimeError:" in page and "<code>aelab doctor</code>" in page
    assert "fc.linear" not in page.split("<h2>Doctor</h2>")[1].split("<h2>")[0]
    assert 'class=failed' in page
    diagnosis = aelab.diagnose(model, (1, 1, 28, 28))
    page = render_html(report, diagnosis)
    finding = diagnosis.findings[0]
    assert finding.fix and html.escape(finding.fix) in page and "12544" in page


def test_no_data_path_and_depth() -> None:
    class Constant(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return x.new_ones(3)

    page = render_html(aelab.inspect(Constant(), (2, 4)))
    assert "No data path" in page and 'id="hourglass"' not in page
    page = render_html(aelab.inspect(seeds.SeqVAE(), (2, 5, 201), depth=1))
    assert 'data-initial-depth="1"' in page


def test_formulas_carry_the_layers_numbers() -> None:
    """With the explanations (--format html fills them), a layer's size formula has its real numbers;
    without them, the layer type's equation and its weight shapes."""
    model = seeds.ConvNet2d()
    out = model.conv(torch.zeros(2, 1, 28, 28))
    page = render_html(aelab.inspect(model, (2, 1, 28, 28), explain=True))
    formulas = page.split("<h2>Formulas</h2>")[1]
    conv = next(line for line in formulas.split("<li>") if line.startswith("<code>conv</code>"))
    assert f"= {out.shape[2]};" in conv and f"W {tuple(model.conv.weight.shape)}" in conv
    page = render_html(aelab.inspect(model, (2, 1, 28, 28)))
    fc = next(line for line in page.split("<h2>Formulas</h2>")[1].split("<li>") if line.startswith("<code>fc</code>"))
    assert "y = x Wᵀ + b" in fc and f"weight {shape(tuple(model.fc.weight.shape))}" in fc
