-- description: Open and closed pipeline by deal stage and owner: count, total and probability-weighted amount.
-- target_lag: 1 minute
-- refresh_mode: INCREMENTAL
-- warn_window_minutes: 5
-- fail_window_minutes: 15
WITH deals AS (
    SELECT
        STAGE,
        OWNER,
        AMOUNT::NUMBER(14, 2) AS AMOUNT,
        PROBABILITY::NUMBER(3, 0) AS PROBABILITY,
        UPDATED_AT::TIMESTAMP_TZ AS UPDATED_AT
    FROM SOPHIA.RAW.DEALS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
)
SELECT
    STAGE,
    OWNER,
    STAGE NOT IN ('closed_won', 'closed_lost') AS IS_OPEN,
    COUNT(*) AS DEAL_COUNT,
    SUM(AMOUNT)::NUMBER(18, 2) AS TOTAL_AMOUNT,
    SUM(AMOUNT * PROBABILITY / 100)::NUMBER(18, 2) AS WEIGHTED_AMOUNT,
    AVG(PROBABILITY)::NUMBER(5, 2) AS AVG_PROBABILITY,
    MAX(UPDATED_AT) AS LAST_UPDATED_AT
FROM deals
GROUP BY STAGE, OWNER
