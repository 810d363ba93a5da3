-- description: One row per live call with contact, company and deal owner; the transcript is the sentiment input.
-- target_lag: 1 minute
-- refresh_mode: INCREMENTAL
-- warn_window_minutes: 5
-- fail_window_minutes: 15
WITH calls AS (
    SELECT
        ID, DEAL_ID, CONTACT_ID, STARTED_AT::TIMESTAMP_TZ AS STARTED_AT, DURATION_SECONDS, TRANSCRIPT, SENTIMENT, TAGS
    FROM SOPHIA.RAW.CALLS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
),
contacts AS (
    SELECT ID, COMPANY_ID
    FROM SOPHIA.RAW.CONTACTS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
),
deals AS (
    SELECT ID, OWNER, STAGE
    FROM SOPHIA.RAW.DEALS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
)
SELECT
    calls.ID AS CALL_ID,
    calls.STARTED_AT,
    calls.STARTED_AT::DATE AS CALL_DATE,
    calls.CONTACT_ID,
    contacts.COMPANY_ID,
    calls.DEAL_ID,
    deals.OWNER AS DEAL_OWNER,
    deals.STAGE AS DEAL_STAGE,
    calls.DURATION_SECONDS,
    LENGTH(calls.TRANSCRIPT) AS TRANSCRIPT_CHARS,
    ARRAY_SIZE(calls.TAGS)::NUMBER(18, 0) AS TAG_COUNT,
    calls.SENTIMENT::NUMBER(4, 3) AS SENTIMENT,
    calls.TRANSCRIPT
FROM calls
LEFT JOIN contacts ON contacts.ID = calls.CONTACT_ID
LEFT JOIN deals ON deals.ID = calls.DEAL_ID
