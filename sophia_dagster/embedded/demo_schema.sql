-- Sophia's demo CRM and conversation schema: the source the Estuary PostgreSQL capture reads.
CREATE TABLE companies (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL,
    domain         text,
    industry       text,
    employees      integer,
    annual_revenue numeric(16, 2),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE contacts (
    id             bigserial PRIMARY KEY,
    company_id     bigint REFERENCES companies (id) ON DELETE SET NULL,
    first_name     text NOT NULL,
    last_name      text NOT NULL,
    email          text NOT NULL,
    title          text,
    phone          text,
    is_active      boolean NOT NULL DEFAULT true,
    last_contacted timestamp,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE deals (
    id          bigserial PRIMARY KEY,
    company_id  bigint REFERENCES companies (id) ON DELETE SET NULL,
    contact_id  bigint REFERENCES contacts (id) ON DELETE SET NULL,
    name        text NOT NULL,
    stage       text NOT NULL,
    amount      numeric(14, 2) NOT NULL,
    currency    char(3) NOT NULL DEFAULT 'USD',
    owner       text NOT NULL,
    close_date  date,
    probability integer CHECK (probability BETWEEN 0 AND 100),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE calls (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deal_id          bigint REFERENCES deals (id) ON DELETE SET NULL,
    contact_id       bigint REFERENCES contacts (id) ON DELETE SET NULL,
    started_at       timestamptz NOT NULL,
    duration_seconds integer NOT NULL,
    transcript       text NOT NULL,
    sentiment        numeric(4, 3),
    tags             text[] NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL
);

CREATE TABLE conversations (
    id         bigserial PRIMARY KEY,
    contact_id bigint REFERENCES contacts (id) ON DELETE SET NULL,
    channel    text NOT NULL,
    messages   jsonb NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX deals_stage_owner ON deals (stage, owner);
CREATE INDEX calls_contact ON calls (contact_id, started_at DESC);
CREATE INDEX conversations_contact ON conversations (contact_id, created_at DESC);
