-- description: One row per live company: its contacts, open and won deals, and its most recent call.
-- target_lag: 5 minutes
-- refresh_mode: AUTO
-- warn_window_minutes: 15
-- fail_window_minutes: 60
WITH companies AS (
    SELECT ID, NAME, DOMAIN, INDUSTRY, EMPLOYEES
    FROM SOPHIA.RAW.COMPANIES
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
),
contacts AS (
    SELECT ID, COMPANY_ID, IS_ACTIVE
    FROM SOPHIA.RAW.CONTACTS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
),
deals AS (
    SELECT COMPANY_ID, STAGE, AMOUNT::NUMBER(14, 2) AS AMOUNT
    FROM SOPHIA.RAW.DEALS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
),
calls AS (
    SELECT CONTACT_ID, STARTED_AT::TIMESTAMP_TZ AS STARTED_AT, SENTIMENT::NUMBER(4, 3) AS SENTIMENT
    FROM SOPHIA.RAW.CALLS
    WHERE COALESCE(FLOW_DOCUMENT:_meta:op::STRING, 'c') <> 'd'
),
contact_stats AS (
    SELECT COMPANY_ID, COUNT(*) AS CONTACT_COUNT, COUNT_IF(IS_ACTIVE)::NUMBER(18, 0) AS ACTIVE_CONTACT_COUNT
    FROM contacts
    GROUP BY COMPANY_ID
),
deal_stats AS (
    SELECT
        COMPANY_ID,
        COUNT_IF(STAGE NOT IN ('closed_won', 'closed_lost'))::NUMBER(18, 0) AS OPEN_DEAL_COUNT,
        SUM(IFF(STAGE NOT IN ('closed_won', 'closed_lost'), AMOUNT, 0))::NUMBER(18, 2) AS OPEN_PIPELINE_AMOUNT,
        SUM(IFF(STAGE = 'closed_won', AMOUNT, 0))::NUMBER(18, 2) AS WON_AMOUNT
    FROM deals
    GROUP BY COMPANY_ID
),
last_call AS (
    SELECT contacts.COMPANY_ID, calls.STARTED_AT AS LAST_CALL_AT, calls.SENTIMENT AS LAST_CALL_SENTIMENT
    FROM calls
    JOIN contacts ON contacts.ID = calls.CONTACT_ID
    QUALIFY ROW_NUMBER() OVER (PARTITION BY contacts.COMPANY_ID ORDER BY calls.STARTED_AT DESC) = 1
)
SELECT
    companies.ID AS COMPANY_ID,
    companies.NAME AS COMPANY_NAME,
    companies.DOMAIN,
    companies.INDUSTRY,
    companies.EMPLOYEES,
    COALESCE(contact_stats.CONTACT_COUNT, 0) AS CONTACT_COUNT,
    COALESCE(contact_stats.ACTIVE_CONTACT_COUNT, 0) AS ACTIVE_CONTACT_COUNT,
    COALESCE(deal_stats.OPEN_DEAL_COUNT, 0) AS OPEN_DEAL_COUNT,
    COALESCE(deal_stats.OPEN_PIPELINE_AMOUNT, 0) AS OPEN_PIPELINE_AMOUNT,
    COALESCE(deal_stats.WON_AMOUNT, 0) AS WON_AMOUNT,
    last_call.LAST_CALL_AT,
    last_call.LAST_CALL_SENTIMENT
FROM companies
LEFT JOIN contact_stats ON contact_stats.COMPANY_ID = companies.ID
LEFT JOIN deal_stats ON deal_stats.COMPANY_ID = companies.ID
LEFT JOIN last_call ON last_call.COMPANY_ID = companies.ID
