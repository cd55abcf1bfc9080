// Package embedded runs a Kafka-protocol broker in-process (franz-go's kfake)
// for the embedded devstack and for tests. Clients reach it over TCP like any
// Kafka cluster; nothing that talks to it may depend on it being kfake.
package embedded

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures an embedded broker.
type Config struct {
	// Addr is the listen address. A missing host means loopback
	// (":9092" → "127.0.0.1:9092"); port 0 picks a free port.
	Addr string
	// DataDir persists topics, offsets and groups; empty keeps everything in
	// memory. Restarting on the same DataDir resumes the same state.
	DataDir string
	// SyncWrites fsyncs every batch: survives power loss, not only process
	// death (which the OS page cache already survives).
	SyncWrites bool
	// Partitions is the default partition count of auto-created topics.
	Partitions int
}

// MaxMessageBytes is the embedded broker's message.max.bytes (16 MiB).
const MaxMessageBytes = 16 << 20

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts a one-node cluster.
func Start(cfg Config) (*Broker, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: %w", cfg.Addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	listenAddr := net.JoinHostPort(host, port)
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// Room for ingest envelopes up to the largest request body
		// (producers of other topics stay under 1 MB batches).
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(MaxMessageBytes)}),
		kfake.DefaultNumPartitions(max(cfg.Partitions, 1)),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, listenAddr) }),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	return &Broker{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr is the address clients dial (host:port).
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, persisting state when it has a data dir.
func (b *Broker) Close() { b.cluster.Close() }

// Cluster is the kfake cluster, for tests that inject faults or delays
// (kfake's Control functions).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }
