-- Clients and where they are (issue 14), same dialect rules as 0001.
-- Boundary groups get their boundaries, the site systems they reference (management
-- points by role ID, gateways by name: the old `gateway` / `fallback_gateway` become the
-- `gateways` list), one-way neighbour relationships and "prefer cloud-based sources";
-- lists are JSON text. The site row gets the two other client settings. `clients`
-- holds what each client's last location request said and which groups it fell in.

ALTER TABLE boundary_groups ADD COLUMN boundaries TEXT NOT NULL DEFAULT '[]';
ALTER TABLE boundary_groups ADD COLUMN management_points TEXT NOT NULL DEFAULT '[]';
ALTER TABLE boundary_groups ADD COLUMN gateways TEXT NOT NULL DEFAULT '[]';
ALTER TABLE boundary_groups ADD COLUMN neighbours TEXT NOT NULL DEFAULT '[]';
ALTER TABLE boundary_groups ADD COLUMN prefer_cloud BIGINT NOT NULL DEFAULT 0;

-- Gateway names are [A-Za-z0-9_-]: nothing to escape in the JSON.
UPDATE boundary_groups SET gateways = CASE
    WHEN gateway IS NOT NULL AND fallback_gateway IS NOT NULL AND fallback_gateway <> gateway
        THEN '["' || gateway || '","' || fallback_gateway || '"]'
    WHEN gateway IS NOT NULL THEN '["' || gateway || '"]'
    WHEN fallback_gateway IS NOT NULL THEN '["' || fallback_gateway || '"]'
    ELSE '[]' END;

ALTER TABLE boundary_groups DROP COLUMN gateway;
ALTER TABLE boundary_groups DROP COLUMN fallback_gateway;

ALTER TABLE site ADD COLUMN allow_cloud_dp BIGINT NOT NULL DEFAULT 1;
ALTER TABLE site ADD COLUMN policy_interval_minutes BIGINT NOT NULL DEFAULT 60;

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    auth TEXT NOT NULL,
    via TEXT NOT NULL,
    addresses TEXT NOT NULL,
    boundary_groups TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_location_at BIGINT NOT NULL
);
