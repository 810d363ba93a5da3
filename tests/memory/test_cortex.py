"""L5 Cortex: the SQL each function runs in prod, and a clear refusal where Cortex does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from snowflake.connector.errors import ProgrammingError

from sophia_dagster.memory.errors import CortexUnavailableError
from sophia_dagster.memory.l5_cortex import CortexResource, cortex_sql
from sophia_dagster.warehouse.embedded import embedded_snowflake_resource
from tests.memory.fake_cortex import fake_cortex, prod_cortex


@pytest.mark.parametrize(
    "function, arguments, expected",
    [
        ("summarize", {"text": "t"}, "SELECT SNOWFLAKE.CORTEX.SUMMARIZE(%(text)s)"),
        ("sentiment", {"text": "t"}, "SELECT SNOWFLAKE.CORTEX.SENTIMENT(%(text)s)"),
        (
            "translate",
            {"text": "t", "source_language": "en", "target_language": "de"},
            "SELECT SNOWFLAKE.CORTEX.TRANSLATE(%(text)s, %(source_language)s, %(target_language)s)",
        ),
        (
            "complete",
            {"model": "mistral-large2", "prompt": "p"},
            "SELECT SNOWFLAKE.CORTEX.COMPLETE(%(model)s, %(prompt)s)",
        ),
    ],
)
def test_cortex_sql_binds_every_argument(function: str, arguments: dict[str, str], expected: str) -> None:
    sql, params = cortex_sql(function, arguments)
    assert (sql, params) == (expected, arguments)
    sqlglot.parse_one(sql.replace("%(", "__").replace(")s", "__"), read="snowflake")


def test_bad_calls_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown Cortex function 'classify'; known: summarize, sentiment"):
        cortex_sql("classify", {"text": "t"})
    with pytest.raises(ValueError, match="Cortex translate needs string argument\\(s\\): target_language"):
        cortex_sql("translate", {"text": "t", "source_language": "en"})


def test_local_cortex_refuses_instead_of_inventing_an_answer(embedded_state_dir: Path) -> None:
    cortex = CortexResource(snowflake=embedded_snowflake_resource(embedded_state_dir), available=False)
    for call in (
        lambda: cortex.summarize("long text"),
        lambda: cortex.sentiment("great"),
        lambda: cortex.translate("hallo", "de", "en"),
        lambda: cortex.complete("hi"),
    ):
        with pytest.raises(CortexUnavailableError, match="unavailable in ENVIRONMENT=local"):
            call()


def test_prod_cortex_runs_the_functions_through_the_connector() -> None:
    with fake_cortex() as fake:
        cortex = prod_cortex(fake.port)
        assert cortex.summarize("It's a long call about pricing.") == "Customer wants a discount."
        assert cortex.sentiment("Great rollout") == pytest.approx(0.62)
        assert cortex.translate("Hallo Welt", "de", "en") == "Hello world"
        assert cortex.complete("Next step?") == "Offer a pilot."
    calls = [sql for sql in fake.queries if sql.startswith("SELECT")]
    assert calls[0].startswith("SELECT SNOWFLAKE.CORTEX.SUMMARIZE('It") and "pricing" in calls[0]
    assert calls[1:] == [
        "SELECT SNOWFLAKE.CORTEX.SENTIMENT('Great rollout')",
        "SELECT SNOWFLAKE.CORTEX.TRANSLATE('Hallo Welt', 'de', 'en')",
        "SELECT SNOWFLAKE.CORTEX.COMPLETE('mistral-large2', 'Next step?')",
    ]


def test_a_snowflake_error_reaches_the_caller_with_snowflakes_message() -> None:
    with fake_cortex() as fake:
        cortex = prod_cortex(fake.port)
        with pytest.raises(ProgrammingError, match="Object does not exist") as caught:
            with cortex.snowflake.get_connection() as conn:
                conn.cursor().execute("SELECT SNOWFLAKE.CORTEX.CLASSIFY_TEXT('x', ['a'])")
    assert "canary-cortex-pw" not in str(caught.value)
