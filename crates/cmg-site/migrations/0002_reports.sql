-- Health and traffic reports from connection points, and traffic alerts (same dialect
-- rules as 0001). The placeholder tables of 0001 were never written; they are replaced.

DROP TABLE traffic_reports;

DROP TABLE alerts;

-- The newest report of each connection point.
CREATE TABLE cp_reports (
    connection_point TEXT PRIMARY KEY,
    gateway TEXT NOT NULL,
    reason TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    settings_version BIGINT NOT NULL
);

-- Each connection point's channels as of its newest report (replaced by each report).
CREATE TABLE channel_status (
    connection_point TEXT NOT NULL,
    address TEXT NOT NULL,
    gateway TEXT NOT NULL,
    instance TEXT,
    state TEXT NOT NULL,
    since BIGINT NOT NULL,
    connection_id TEXT,
    last_error TEXT,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (connection_point, address)
);

-- The high-water mark of each instance boot: the highest seq counted and the cumulative
-- counters at that seq (JSON), so the next snapshot adds only the difference.
CREATE TABLE traffic_marks (
    gateway TEXT NOT NULL,
    instance TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    counters TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (gateway, instance, boot_id)
);

-- Counted traffic per endpoint and hour (hour = Unix seconds of the hour's start).
CREATE TABLE traffic_buckets (
    gateway TEXT NOT NULL,
    instance TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    hour BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    status_1xx BIGINT NOT NULL,
    status_2xx BIGINT NOT NULL,
    status_3xx BIGINT NOT NULL,
    status_4xx BIGINT NOT NULL,
    status_5xx BIGINT NOT NULL,
    latency_us_sum BIGINT NOT NULL,
    PRIMARY KEY (gateway, instance, endpoint, hour)
);

CREATE INDEX traffic_buckets_hour ON traffic_buckets (gateway, hour);

-- Traffic alerts: raised when the 14-day egress reaches a level, cleared when it leaves it.
CREATE TABLE alerts (
    id BIGINT PRIMARY KEY,
    gateway TEXT NOT NULL,
    level TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    cleared_at BIGINT,
    egress_bytes BIGINT NOT NULL,
    threshold_bytes BIGINT NOT NULL,
    stopped BIGINT NOT NULL,
    message TEXT NOT NULL
);

CREATE INDEX alerts_gateway ON alerts (gateway, cleared_at);

ALTER TABLE site ADD COLUMN alert_webhook TEXT;
