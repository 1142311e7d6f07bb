-- The tables pipelines/ad-metrics.toml writes. With `create = true` (as in that file) the
-- host creates them itself from the window rows' columns; this is the same DDL, for
-- creating them by hand (then set create = false). Tested on ClickHouse 18.16 (Debian's)
-- and 26.9 (chdb-core), where the tests check it makes the table the sink makes.
--
-- ReplacingMergeTree keyed by window and dimensions: a window written twice (a replay after
-- a restart, or a partial window flushed at shutdown and completed later) is one row after
-- merges; read with FINAL to see it merged now.

CREATE DATABASE IF NOT EXISTS adstream;

CREATE TABLE IF NOT EXISTS adstream.ad_metrics_1m (
    `window_start` DateTime,
    `window_end` DateTime,
    `window` String,
    `country` String,
    `ad_format` String,
    `requests` Int64,
    `fills` Int64,
    `impressions` Int64,
    `clicks` Int64,
    `conversions` Int64,
    `revenue` Float64,
    `cost` Float64,
    `ctr` Nullable(Float64),
    `cvr` Nullable(Float64),
    `ecpm` Nullable(Float64),
    `cpm` Nullable(Float64),
    `cpc` Nullable(Float64),
    `fill_rate` Nullable(Float64)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, country, ad_format);

-- adstream.ad_metrics_10s has the same columns.
CREATE TABLE IF NOT EXISTS adstream.ad_metrics_10s AS adstream.ad_metrics_1m;
