-- decisions: every rule-evaluator decision with its explanation (audit log).
-- decision_id is deterministic, so a replayed decision replaces itself.
CREATE TABLE IF NOT EXISTS `{{.DB}}`.decisions (
    tenant {{.LC}},
    decision_id String,
    level {{.LC}},
    target String,
    rule String,
    rule_set_version String,
    severity {{.LC}},
    action {{.LC}},
    at {{.DT}},
    until Nullable({{.DT}}),
    cap_ratio Float64,
    daily_cap Int64,
    from_state {{.LC}},
    to_state {{.LC}},
    shadow UInt8,
    health_score Float64,
    priority Int32,
{{- template "explanation" .}}
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, decision_id);

-- commands: every control command the actuator emitted, automatic or manual
-- (actor, reason), keyed by its idempotency id.
CREATE TABLE IF NOT EXISTS `{{.DB}}`.commands (
    tenant {{.LC}},
    command_id String,
    level {{.LC}},
    target String,
    action {{.LC}},
    rule String,
    severity {{.LC}},
    at {{.DT}},
    until Nullable({{.DT}}),
    issued_at {{.DT}},
    cap_ratio Float64,
    daily_cap Int64,
    actor String,
    reason String,
    decision_id String,
{{- template "explanation" .}}
    inserted_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, command_id);

{{define "explanation"}}
    expl_metric String,
    expl_observed Float64,
    expl_threshold Float64,
    expl_comparator String,
    expl_sample_size Int64,
    expl_window String,
    expl_provider_concentration Float64,
    expl_top_provider String,
    expl_condition String,
    expl_summary String,
    expl_source String,
{{- end}}
