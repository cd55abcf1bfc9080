// Package topics names the Kafka topics of the pipeline, their keys and
// their specs. Keys are chosen so that every aggregate is exact with many
// partitions and many instances:
//
//	sg.raw.v1            RawEnvelope      key tenant|envelope_id   (spread)
//	sg.events.v1         Event            key tenant|event_id      (a duplicate lands on the same partition),
//	                     headers: sg-tenant, sg-event (type word and occurred_at unix ms, "bounced 1795341600123")
//	sg.scoped-events.v1  ScopedBatch      key tenant|level|target of one of its scopes: admitted events, each
//	                     once per partition that owns some of its scopes, with those scopes' levels
//	sg.metrics.v1        WindowSnapshot   key tenant|level|target  (one owner per scope)
//	sg.decisions.v1      Decision         key tenant|level|target
//	sg.control.v1        ControlCommand   key tenant|level|target  (history: every command)
//	sg.control-state.v1  ControlCommand   key tenant|level|target  (compacted: current state per scope)
//	sg.window-state.v1   window checkpoint key tenant|level|target (compacted)
//	sg.admit-state.v1    admitted-id segments key admit|partition|first offset (compacted)
//	sg.rules-state.v1    health state      key tenant|level|target (compacted)
//	sg.dlq.v1            DeadLetter       key of the failed record
package topics

import (
	"time"

	"github.com/sendguard/sendguard/pkg/kafka"
)

// Names of the topics.
const (
	Raw          = "sg.raw.v1"
	Events       = "sg.events.v1"
	ScopedEvents = "sg.scoped-events.v1"
	Metrics      = "sg.metrics.v1"
	Decisions    = "sg.decisions.v1"
	Control      = "sg.control.v1"
	ControlState = "sg.control-state.v1"
	WindowState  = "sg.window-state.v1"
	AdmitState   = "sg.admit-state.v1"
	RulesState   = "sg.rules-state.v1"
	DLQ          = "sg.dlq.v1"
)

// Specs returns every topic with partitions partitions (state and DLQ topics
// included), as created at start by each service.
func Specs(partitions int) []kafka.TopicSpec {
	week := 7 * 24 * time.Hour
	return []kafka.TopicSpec{
		{Name: Raw, Partitions: partitions, Retention: week},
		{Name: Events, Partitions: partitions, Retention: 5 * week},
		{Name: ScopedEvents, Partitions: partitions, Retention: week},
		{Name: Metrics, Partitions: partitions, Retention: week},
		{Name: Decisions, Partitions: partitions, Retention: 5 * week},
		{Name: Control, Partitions: partitions, Retention: 5 * week},
		{Name: ControlState, Partitions: partitions, Compacted: true},
		{Name: WindowState, Partitions: partitions, Compacted: true},
		{Name: AdmitState, Partitions: partitions, Compacted: true},
		{Name: RulesState, Partitions: partitions, Compacted: true},
		{Name: DLQ, Partitions: 1, Retention: 5 * week},
	}
}

// Key joins key parts with '|'.
func Key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	return AppendKey(make([]byte, 0, n), parts...)
}

// AppendKey appends Key(parts...) to dst and returns it, for hot paths
// that hash a key without keeping it.
func AppendKey(dst []byte, parts ...string) []byte {
	for i, p := range parts {
		if i > 0 {
			dst = append(dst, '|')
		}
		dst = append(dst, p...)
	}
	return dst
}
