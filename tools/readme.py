"""Write README.md from nbs/index.ipynb (markdown cells and visible code cells with their text outputs).

nbdev_readme needs Quarto, which these machines cannot install; this does the same for the index notebook.
Run: python tools/readme.py
"""
import json
from pathlib import Path

root = Path(__file__).resolve().parent.parent
nb = json.loads((root / "nbs" / "index.ipynb").read_text())
parts = []
for cell in nb["cells"]:
    src = "".join(cell["source"])
    if cell["cell_type"] == "markdown":
        parts.append(src)
    elif cell["cell_type"] == "code" and not src.lstrip().startswith("#| hide"):
        parts.append(f"```python\n{src}\n```")
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
            if text.strip(): parts.append("    " + text.rstrip().replace("\n", "\n    "))
text = "\n\n".join(parts) + "\n"
(root / "README.md").write_text(text.replace("](images/", "](nbs/images/"))  # the notebook's links are relative to nbs/
print("wrote", root / "README.md")
