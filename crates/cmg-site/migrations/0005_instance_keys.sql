-- Each gateway instance's public key (X25519, base64), recorded when the instance is
-- exported: the site seals the secrets a bundle carries (the storage key) to these keys,
-- one copy per instance. Same dialect rules as 0001.

CREATE TABLE instance_keys (
    gateway TEXT NOT NULL,
    instance BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (gateway, instance)
);
