-- description: Per raw CDC table: live and soft-deleted row counts and the last time Estuary published to it.
-- target_lag: 1 minute
-- refresh_mode: FULL
-- warn_window_minutes: 5
-- fail_window_minutes: 15
WITH changes AS (
    SELECT 'companies' AS SOURCE_TABLE, FLOW_DOCUMENT:_meta:op::STRING AS OP, FLOW_PUBLISHED_AT
    FROM SOPHIA.RAW.COMPANIES
    UNION ALL
    SELECT 'contacts', FLOW_DOCUMENT:_meta:op::STRING, FLOW_PUBLISHED_AT FROM SOPHIA.RAW.CONTACTS
    UNION ALL
    SELECT 'deals', FLOW_DOCUMENT:_meta:op::STRING, FLOW_PUBLISHED_AT FROM SOPHIA.RAW.DEALS
    UNION ALL
    SELECT 'calls', FLOW_DOCUMENT:_meta:op::STRING, FLOW_PUBLISHED_AT FROM SOPHIA.RAW.CALLS
    UNION ALL
    SELECT 'conversations', FLOW_DOCUMENT:_meta:op::STRING, FLOW_PUBLISHED_AT FROM SOPHIA.RAW.CONVERSATIONS
)
SELECT
    SOURCE_TABLE,
    COUNT_IF(COALESCE(OP, 'c') <> 'd')::NUMBER(18, 0) AS LIVE_ROWS,
    COUNT_IF(OP = 'd')::NUMBER(18, 0) AS DELETED_ROWS,
    MAX(FLOW_PUBLISHED_AT) AS LAST_PUBLISHED_AT
FROM changes
GROUP BY SOURCE_TABLE
