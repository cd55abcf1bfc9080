// Package kafkatest starts an in-process Kafka-protocol broker for tests.
// Code under test reaches it over TCP through kafka-go like any broker.
package kafkatest

import (
	"net"
	"testing"

	"github.com/sendguard/sendguard/pkg/kafka/embedded"
)

// Start starts a broker on a free loopback port, with an optional persistent
// data dir, closed when the test ends. It returns the broker and its address.
func Start(t testing.TB, dataDir string) (*embedded.Broker, string) {
	t.Helper()
	b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", DataDir: dataDir, Partitions: 4})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b, b.Addr()
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for servers that must be told their address before they start.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
