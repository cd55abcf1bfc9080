-- Rollups: per scope (tenant, level, target) and bucket, the counters of
-- pkg/metrics. One materialized view per granularity reads each inserted
-- block of events, fans every event out to the scope levels it belongs to
-- (ARRAY JOIN of two parallel arrays, level words and targets; empty targets
-- dropped) and writes partial sums into a SummingMergeTree. The views read
-- events directly: 18.16 does not cascade a view's insert into the views of
-- its target table, so hour and day cannot be derived from minute. Parts merge in the background: always read with sum()
-- and GROUP BY (or RollupCounts), never a bare SELECT.
{{range .Rollups}}
CREATE TABLE IF NOT EXISTS `{{$.DB}}`.{{.Table}} (
    tenant {{$.LC}},
    level {{$.LC}},
    target String,
    bucket {{.BucketType}}
{{- range $.Counters}},
    {{.Name}} UInt64
{{- end}}
)
ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (tenant, level, target, bucket)
{{- if and $.TTL .TTLDays}}
TTL toDate(bucket) + toIntervalDay({{.TTLDays}})
{{- end}};

CREATE MATERIALIZED VIEW IF NOT EXISTS `{{$.DB}}`.{{.Table}}_mv TO `{{$.DB}}`.{{.Table}} AS
SELECT
    tenant,
    level,
    target,
    {{.BucketExpr}} AS bucket
{{- range $.Counters}},
    countIf({{.Expr}}) AS {{.Name}}
{{- end}}
FROM `{{$.DB}}`.events
ARRAY JOIN
    [{{range $i, $l := $.Levels}}{{if $i}}, {{end}}'{{$l.Name}}'{{end}}] AS level,
    [{{range $i, $l := $.Levels}}{{if $i}}, {{end}}{{$l.Expr}}{{end}}] AS target
WHERE target != ''
GROUP BY tenant, level, target, bucket;
{{end}}
