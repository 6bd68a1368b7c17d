-- Each gateway instance's channel addresses, as its connection points dial them: a JSON
-- list with one entry per instance, each a list of `host:port` in order of preference.
-- NULL: not set (connection points use the lists in their config files).

ALTER TABLE gateways ADD COLUMN instance_channels TEXT;
