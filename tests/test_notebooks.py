"""Every notebook in notebooks/ runs top to bottom (quick settings)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Notebooks read ISSLIDE_NB_PRESET to pick their (quick) size; outputs go to tmp_path.
    monkeypatch.setenv("ISSLIDE_NB_PRESET", "tiny")
    monkeypatch.setenv("ISSLIDE_NB_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert os.listdir(tmp_path), "a notebook should write its outputs where it runs"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1
