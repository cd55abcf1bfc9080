package drive

import (
	"context"
	"fmt"
	"sort"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sendguard/sendguard/pkg/kafka"
)

// broker answers the bench's questions to the cluster: partitions, end
// offsets, committed offsets, and tails of topics.
type broker struct {
	brokers []string
	c       *kafkago.Client
}

func newBroker(brokers []string) *broker {
	return &broker{brokers: brokers, c: &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second,
		Transport: &kafkago.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, MetadataTTL: 10 * time.Second}}}
}

func (b *broker) close() {
	if tr, ok := b.c.Transport.(*kafkago.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// partitions returns the partition ids of topic.
func (b *broker) partitions(ctx context.Context, topic string) ([]int, error) {
	meta, err := b.c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return nil, fmt.Errorf("metadata %s: topic not found", topic)
	}
	var ps []int
	for _, p := range meta.Topics[0].Partitions {
		ps = append(ps, p.ID)
	}
	sort.Ints(ps)
	return ps, nil
}

// offsets returns the first and end (next) offset of every partition of
// topic.
func (b *broker) offsets(ctx context.Context, topic string) (first, end map[int]int64, err error) {
	ps, err := b.partitions(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, p := range ps {
		req.Topics[topic] = append(req.Topics[topic], kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	res, err := b.c.ListOffsets(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets %s: %w", topic, err)
	}
	first, end = map[int]int64{}, map[int]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
		}
		first[po.Partition], end[po.Partition] = po.FirstOffset, po.LastOffset
	}
	return first, end, nil
}

// topics returns the names of every topic of the cluster.
func (b *broker) topics(ctx context.Context) ([]string, error) {
	meta, err := b.c.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var out []string
	for _, t := range meta.Topics {
		if t.Error == nil && !t.Internal {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// GroupLag returns, for every consumer group of the cluster at brokers, the
// sum over the partitions it committed on of end offset minus committed
// offset (what `sgctl bench pipeline` samples as consumer lag).
func GroupLag(ctx context.Context, brokers []string) (map[string]int64, error) {
	b := newBroker(brokers)
	defer b.close()
	return b.lag(ctx, nil)
}

// lag returns, for every consumer group, the sum over the partitions of
// topics it committed on of end offset minus committed offset; every topic
// of the cluster when topicNames is empty.
func (b *broker) lag(ctx context.Context, topicNames []string) (map[string]int64, error) {
	if len(topicNames) == 0 {
		var err error
		if topicNames, err = b.topics(ctx); err != nil {
			return nil, err
		}
	}
	groups, err := b.c.ListGroups(ctx, &kafkago.ListGroupsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	if groups.Error != nil {
		return nil, fmt.Errorf("list groups: %w", groups.Error)
	}
	ends := map[string]map[int]int64{}
	req := map[string][]int{}
	for _, t := range topicNames {
		_, end, err := b.offsets(ctx, t)
		if err != nil {
			return nil, err
		}
		ends[t] = end
		for p := range end {
			req[t] = append(req[t], p)
		}
	}
	out := map[string]int64{}
	for _, g := range groups.Groups {
		res, err := b.c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: g.GroupID, Topics: req})
		if err != nil {
			return nil, fmt.Errorf("offset fetch %s: %w", g.GroupID, err)
		}
		if res.Error != nil {
			return nil, fmt.Errorf("offset fetch %s: %w", g.GroupID, res.Error)
		}
		var lag int64
		for t, ps := range res.Topics {
			for _, p := range ps {
				if p.Error != nil || p.CommittedOffset < 0 {
					continue
				}
				if d := ends[t][p.Partition] - p.CommittedOffset; d > 0 {
					lag += d
				}
			}
		}
		out[g.GroupID] = lag
	}
	return out, nil
}

// record is one consumed record of a tail.
type record struct {
	partition int
	offset    int64
	key       []byte
	value     []byte
	at        time.Time // the record's timestamp (its producer's, see SpikeHops)
}

// tail reads topic/partition from offset until ctx ends (or, when end >= 0,
// until end), calling fn for every record. A fetch error ends the tail; the
// end of ctx is not an error.
func (b *broker) tail(ctx context.Context, topic string, partition int, offset, end int64, fn func(record)) error {
	err := kafka.Tail(ctx, b.brokers, topic, partition, offset, end, 20*time.Millisecond, func(m kafka.Message) error {
		fn(record{partition: m.Partition(), offset: m.Offset(), key: m.Key(), value: m.Value(), at: m.Time()})
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// partitionOf returns the partition kafka-go's Hash balancer (the pipeline
// producers' balancer) picks for key among n partitions.
func partitionOf(key []byte, n int) int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return (&kafkago.Hash{}).Balance(kafkago.Message{Key: key}, ps...)
}
