"""What a publication changes: the live spec against the new one, one line per changed value, secrets masked.

Values are masked when their key names a secret (``password``, ``private_key``, ``token``...), when they are
sops ciphertext (``ENC[...]``), and whatever the caller's redactor knows (every resolved placeholder value).
The ``sops`` envelope itself is summarised, never listed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|token|private|credential|api_?key|_sops$", re.IGNORECASE)
MASK = "****"
ENCRYPTED = "<encrypted>"
MAX_VALUE_CHARS = 80


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            if key == "sops":
                yield f"{path}.sops" if path else "sops", "<sops envelope>"
                continue
            yield from _flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def _shown(path: str, value: Any, redact: Callable[[str], str]) -> str:
    last = re.split(r"[.\[]", path)[-1]
    if isinstance(value, str) and value.startswith("ENC["):
        return ENCRYPTED
    if SECRET_KEY.search(last) and value not in (None, "", {}, []):
        return MASK
    text = redact(json.dumps(value, ensure_ascii=False))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def spec_changes(
    live: Mapping[str, Any] | None, new: Mapping[str, Any], redact: Callable[[str], str] = str
) -> list[str]:
    """Lines ``~ path: old -> new``, ``+ path: new``, ``- path: old`` describing how ``live`` becomes ``new``.

    Args:
        live: the live spec (``None`` when the spec is created).
        new: the spec about to be published.
        redact: masks known secret values in rendered text.

    Example:
        >>> spec_changes({"shards": {"disable": True}}, {"shards": {"disable": False}})
        ['~ shards.disable: true -> false']
    """
    if live is None:
        return ["+ (new spec)"]
    before, after = dict(_flatten(live)), dict(_flatten(new))
    lines = []
    for path in dict.fromkeys([*before, *after]):
        if path not in after:
            lines.append(f"- {path}: {_shown(path, before[path], redact)}")
        elif path not in before:
            lines.append(f"+ {path}: {_shown(path, after[path], redact)}")
        elif before[path] != after[path]:
            old, now = _shown(path, before[path], redact), _shown(path, after[path], redact)
            lines.append(f"~ {path}: {old} -> {now}" if old != now else f"~ {path}: changed ({now})")
    return lines
