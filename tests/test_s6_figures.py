"""s6_figures.py: the README's four figures, written from a finished run without training."""

from conftest import run_script


def test_figures_are_written_from_a_finished_run(finished_run, tmp_path):
    result = run_script("s6_figures.py", finished_run, "--out", tmp_path / "doc")
    assert result.returncode == 0, result.stderr
    for name in ["samples.png", "curves.png", "misclassified.png", "confusion.png"]:
        assert (tmp_path / "doc" / name).read_bytes().startswith(b"\x89PNG")
