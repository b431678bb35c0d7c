"""Remote objects in a real Jupyter kernel: rich display, completion, help (issue 12, point 3)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # builds the pandas venv (once per run)

SETUP = """\
import mvbridge
env = mvbridge.Env("notebook", interpreter={interpreter!r})
pd = env.import_module("pandas")
df = pd.DataFrame({{"alpha": [1, 2], "beta": [3.5, 4.5]}})
"""
COMPLETE = """\
import json
from IPython.core.completer import provisionalcompleter

def complete(code):
    # What the kernel's complete_request answers (ipykernel's do_complete does the same).
    with provisionalcompleter():
        return sorted({c.text for c in get_ipython().Completer.completions(code, len(code))})

print(json.dumps({
    "df.he": complete("df.he"),
    "pd.read_c": complete("pd.read_c"),
    'df["': complete('df["'),
    "dir": sorted(n for n in dir(df) if n in ("head", "columns", "to_csv")),
}))
"""
SIGNATURE = """\
import inspect
print(inspect.signature(df.head))
print(get_ipython().object_inspect("pd.read_csv")["definition"].splitlines()[0])
"""


def _notebook(interpreter: str) -> nbformat.NotebookNode:
    cells = [SETUP.format(interpreter=interpreter), "df", COMPLETE, SIGNATURE, "env.shutdown()"]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_notebook_shows_remote_dataframe_as_html_and_completes_it(py_pandas, tmp_path):
    notebook = _notebook(py_pandas)
    client = NotebookClient(
        notebook, timeout=45, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()

    errors = [o for c in notebook.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    (shown,) = notebook.cells[1].outputs
    assert shown.output_type == "execute_result"
    html = shown.data["text/html"]
    assert '<table border="1" class="dataframe">' in html
    assert "<th>alpha</th>" in html
    assert "<td>3.5</td>" in html
    assert "alpha" in shown.data["text/plain"]

    completions = json.loads(_stdout(notebook.cells[2]))
    assert "head" in completions["df.he"] or "df.head" in completions["df.he"]
    assert {"read_csv", "read_clipboard"} <= {
        c.rpartition(".")[2] for c in completions["pd.read_c"]
    }
    assert {"alpha", "beta"} <= set(completions['df["'])
    assert completions["dir"] == ["columns", "head", "to_csv"]

    signature, definition = _stdout(notebook.cells[3]).splitlines()
    assert signature == "(n: int = 5) -> Self"
    assert definition.startswith("pd.read_csv(")
