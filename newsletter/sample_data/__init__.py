"""Sample papers shipped for `make demo` and first-run experiments.

`papers-page.txt` is a Hugging Face papers page saved as text: 116 arXiv papers (title line,
abstract line). arXiv metadata is CC0 (public domain), so it may ship with the project.
"""

from pathlib import Path

PAPERS_PAGE = Path(__file__).with_name("papers-page.txt")
