"""The one figure saver: the format follows the suffix, the write is atomic, the figure is closed."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from estim.errors import EstimInputError  # noqa: E402
from estim.report.figures import save_figure  # noqa: E402


def _figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


@pytest.mark.parametrize(
    ("name", "magic"), [("f.png", b"\x89PNG"), ("f.pdf", b"%PDF"), ("f.svg", b"<?xml")]
)
def test_saves_in_the_format_of_the_suffix_and_closes(tmp_path, name, magic):
    fig = _figure()
    path = save_figure(fig, tmp_path / "sub" / name)
    assert path.read_bytes().startswith(magic)
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left beside it


def test_an_unknown_format_is_refused_and_nothing_is_written(tmp_path):
    fig = _figure()
    with pytest.raises(EstimInputError, match="png, pdf, svg"):
        save_figure(fig, tmp_path / "f.jpg")
    assert not list(tmp_path.iterdir())
    assert not plt.fignum_exists(fig.number)


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.png"
    target.write_bytes(b"old")
    fig = _figure()
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, target)
    assert target.read_bytes() == b"old"
