-- The storage account a gateway serves content from (cloud distribution point), same
-- dialect rules as 0001. The placeholder of 0001 was never written; it is replaced.
-- Both account keys are sealed with the master key; `active_key` (1 or 2) is the one
-- published to the gateway.

DROP TABLE storage_credentials;

CREATE TABLE storage_credentials (
    gateway TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    endpoint TEXT,
    container TEXT NOT NULL,
    key1_sealed TEXT NOT NULL,
    key2_sealed TEXT NOT NULL,
    active_key BIGINT NOT NULL,
    rotated_at BIGINT NOT NULL,
    rotation_days BIGINT NOT NULL
);
