"""A deterministic 768-dimensional text embedding that needs no model download (local L3 only).

Feature hashing: lower-cased words, word bigrams and character trigrams of each word are hashed
(BLAKE2b, so stable across processes) into 768 signed buckets, weighted by sublinear term frequency
and L2-normalised. Cosine similarity then measures shared vocabulary and word forms. It is lexical,
not semantic: "cheap" and "inexpensive" are unrelated to it, word order beyond bigrams is ignored, and
hash collisions add noise. Production uses Snowflake Cortex `EMBED_TEXT_768` instead.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator

DIMENSIONS = 768
WORD = re.compile(r"[^\W_]+")
WEIGHTS = {"w": 1.0, "b": 0.7, "c": 0.35}


def _features(text: str) -> Iterator[str]:
    words = WORD.findall(text.lower())
    for word in words:
        yield f"w:{word}"
        padded = f"<{word}>"
        for start in range(len(padded) - 2):
            yield f"c:{padded[start : start + 3]}"
    for first, second in zip(words, words[1:], strict=False):
        yield f"b:{first} {second}"


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The unit-length embedding of `text` (all zeros for text without a word)."""
    vector = [0.0] * dimensions
    for feature, count in Counter(_features(text)).items():
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
        sign = 1.0 if digest >> 63 else -1.0
        vector[digest % dimensions] += sign * WEIGHTS[feature[0]] * (1.0 + math.log(count))
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else vector


def vector_literal(vector: list[float]) -> str:
    """A pgvector / Snowflake array literal: `[0.1,0.2,...]`."""
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
