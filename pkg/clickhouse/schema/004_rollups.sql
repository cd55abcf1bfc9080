-- Rollups: per scope (tenant, level, target) and bucket, the counters of
-- pkg/metrics. One materialized view per granularity reads each inserted
-- block of events, fans every event out to the scope levels it belongs to
-- (ARRAY JOIN, empty targets dropped) and writes partial sums into a
-- SummingMergeTree. Parts merge in the background: always read with sum()
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
    scope.1 AS level,
    scope.2 AS target,
    {{.BucketExpr}} AS bucket
{{- range $.Counters}},
    sum(toUInt64({{.Expr}})) AS {{.Name}}
{{- end}}
FROM `{{$.DB}}`.events
ARRAY JOIN arrayFilter(x -> x.2 != '', [
{{- range $i, $l := $.Levels}}{{if $i}},{{end}}
    ('{{$l.Name}}', {{$l.Expr}})
{{- end}}
]) AS scope
GROUP BY tenant, level, target, bucket;
{{end}}
