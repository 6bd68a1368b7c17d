-- The site's schema. The same file runs on SQLite and PostgreSQL: only BIGINT and TEXT
-- columns (booleans are 0/1, times are Unix seconds, lists are JSON text, secrets are
-- sealed text), no AUTOINCREMENT/SERIAL (ids come from site.change_seq), no foreign keys
-- (the store deletes dependants itself, the same way on both).

CREATE TABLE site (
    id BIGINT PRIMARY KEY,
    code TEXT NOT NULL,
    guid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    change_seq BIGINT NOT NULL,
    key_check TEXT NOT NULL,
    ca_cert_pem TEXT NOT NULL,
    ca_key_sealed TEXT NOT NULL,
    api_cert_pem TEXT NOT NULL,
    api_key_sealed TEXT NOT NULL,
    clients_use_cmg BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    public_pem TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    retire_at BIGINT
);

CREATE TABLE gateways (
    name TEXT PRIMARY KEY,
    service_name TEXT NOT NULL,
    region TEXT NOT NULL,
    instances BIGINT NOT NULL,
    cert_pem TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    cert_not_after BIGINT NOT NULL,
    trusted_roots TEXT NOT NULL,
    intermediates TEXT NOT NULL,
    trust_list TEXT,
    verify_revocation BIGINT NOT NULL,
    min_tls TEXT NOT NULL,
    content_enabled BIGINT NOT NULL,
    alert_enabled BIGINT NOT NULL,
    alert_threshold_gb BIGINT NOT NULL,
    alert_warning_pct BIGINT NOT NULL,
    alert_critical_pct BIGINT NOT NULL,
    alert_stop_at_critical BIGINT NOT NULL,
    service_stopped TEXT,
    redeploy_required BIGINT NOT NULL,
    settings_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE connection_points (
    id TEXT PRIMARY KEY,
    gateway TEXT NOT NULL,
    cert_pem TEXT NOT NULL,
    cert_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE roles (
    role_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    internal_url TEXT NOT NULL,
    mode TEXT NOT NULL,
    allow_gateway_traffic BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE boundary_groups (
    name TEXT PRIMARY KEY,
    gateway TEXT,
    fallback_gateway TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE bulk_tokens (
    tracking_id TEXT PRIMARY KEY,
    signing_kid TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    issued_by TEXT NOT NULL,
    blocked BIGINT NOT NULL,
    blocked_at BIGINT
);

CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE TABLE traffic_reports (
    id BIGINT PRIMARY KEY,
    gateway TEXT NOT NULL,
    instance BIGINT NOT NULL,
    connection_point TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    status_2xx BIGINT NOT NULL,
    status_3xx BIGINT NOT NULL,
    status_4xx BIGINT NOT NULL,
    status_5xx BIGINT NOT NULL,
    latency_ms_sum BIGINT NOT NULL
);

CREATE INDEX traffic_reports_gateway_period ON traffic_reports (gateway, period_end);

CREATE TABLE alerts (
    id BIGINT PRIMARY KEY,
    gateway TEXT NOT NULL,
    level TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    cleared_at BIGINT,
    message TEXT NOT NULL
);

CREATE TABLE storage_credentials (
    gateway TEXT PRIMARY KEY,
    secret_sealed TEXT NOT NULL,
    rotated_at BIGINT NOT NULL
);
