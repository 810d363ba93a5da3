"""The README's shell commands, section by section, so tests run exactly what the README shows."""

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def commands_under(heading: str) -> list[list[str]]:
    """The commands of the ```bash blocks in the section titled `heading`, split into argv (comments dropped)."""
    text = README.read_text()
    start = re.search(rf"^#+ {re.escape(heading)}\s*$", text, re.MULTILINE)
    assert start, f"README has no section {heading!r}"
    level = len(start.group(0)) - len(start.group(0).lstrip("#"))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, start.end())
    section = text[start.end() : end.start() if end else len(text)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return [shlex.split(line, comments=True) for block in blocks for line in block.splitlines() if line.strip()]
