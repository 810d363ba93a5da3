"""L5: Snowflake Cortex AI functions (summarize, sentiment, translate, complete) as a resource.

In prod the functions run as SQL through the `SnowflakeResource`. Where Cortex does not exist (the
embedded local warehouse) every call raises `CortexUnavailableError`: no placeholder answer is made up.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_snowflake import SnowflakeResource
from pydantic import Field

from sophia_dagster.memory.errors import CortexUnavailableError

DEFAULT_COMPLETE_MODEL = "mistral-large2"
FUNCTIONS = {
    "summarize": ("SUMMARIZE", ("text",)),
    "sentiment": ("SENTIMENT", ("text",)),
    "translate": ("TRANSLATE", ("text", "source_language", "target_language")),
    "complete": ("COMPLETE", ("model", "prompt")),
}


def cortex_sql(function: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`SELECT SNOWFLAKE.CORTEX.<FUNCTION>(...)` with bound parameters; a clear error for bad input."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown Cortex function {function!r}; known: {', '.join(FUNCTIONS)}")
    name, parameters = FUNCTIONS[function]
    missing = [parameter for parameter in parameters if not isinstance(arguments.get(parameter), str)]
    if missing:
        raise ValueError(f"Cortex {function} needs string argument(s): {', '.join(missing)}")
    placeholders = ", ".join(f"%({parameter})s" for parameter in parameters)
    return f"SELECT SNOWFLAKE.CORTEX.{name}({placeholders})", {p: arguments[p] for p in parameters}


class CortexResource(dg.ConfigurableResource):
    """Cortex AI functions through Snowflake; `available=False` where the warehouse has no Cortex."""

    snowflake: SnowflakeResource
    available: bool = Field(description="Whether the warehouse runs Cortex (False for the embedded one)")
    unavailable_reason: str = Field(
        "Cortex AI functions are unavailable in ENVIRONMENT=local: the embedded warehouse has no Cortex; "
        "run with ENVIRONMENT=dev or prod against Snowflake",
    )
    complete_model: str = Field(DEFAULT_COMPLETE_MODEL, description="Model for `complete`")

    def run(self, function: str, **arguments: str) -> Any:
        """Run one Cortex function and return its value."""
        sql, params = cortex_sql(function, arguments)
        if not self.available:
            raise CortexUnavailableError(f"{function}: {self.unavailable_reason}")
        with self.snowflake.get_connection() as conn:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def summarize(self, text: str) -> str:
        """A summary of `text`."""
        return self.run("summarize", text=text)

    def sentiment(self, text: str) -> float:
        """Sentiment of `text` from -1 (negative) to 1 (positive)."""
        return float(self.run("sentiment", text=text))

    def translate(self, text: str, source_language: str, target_language: str) -> str:
        """`text` translated (language codes such as 'en', 'de'; '' source means detect)."""
        return self.run("translate", text=text, source_language=source_language, target_language=target_language)

    def complete(self, prompt: str, model: str | None = None) -> str:
        """The model's completion of `prompt`."""
        return self.run("complete", model=model or self.complete_model, prompt=prompt)
