// Package actuatortest runs the actuator stage in-process for tests: a real
// embedded broker (kafkatest), the topics, a kafka-go producer, the
// enforcement state and a real gRPC server on loopback serving
// PermissionService and ControlService with health and reflection.
package actuatortest

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sendguard/sendguard/pkg/auth"
	"github.com/sendguard/sendguard/pkg/enforce"
	"github.com/sendguard/sendguard/pkg/kafka"
	"github.com/sendguard/sendguard/pkg/kafka/kafkatest"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/stage/actuator"
	"github.com/sendguard/sendguard/pkg/topics"
)

// Server is a running actuator.
type Server struct {
	// Addr is the gRPC address; Brokers the broker's.
	Addr    string
	Brokers []string
	Stage   *actuator.Stage
	// Producer is the stage's producer (Publisher may wrap it).
	Producer *kafka.Producer
}

// Options tune Start. Keys maps tenant → API key (default
// {"default": "key-default", "other": "key-other"}); Clock is the clock of
// the state and the stage (default time.Now); Publisher wraps the producer
// (fault injection) when set.
type Options struct {
	Keys      map[string]string
	Clock     func() time.Time
	Config    *enforce.Config
	Publisher func(actuator.Publisher) actuator.Publisher
}

// Start starts a broker, the topics and the actuator's gRPC server; all
// stop when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	_, addr := kafkatest.Start(t, "")
	brokers := []string{addr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, brokers, 1, topics.Specs(2)...); err != nil {
		t.Fatalf("topics: %v", err)
	}
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = prod.Close() })
	keys := auth.NewKeys()
	if o.Keys == nil {
		o.Keys = map[string]string{"default": "key-default", "other": "key-other"}
	}
	for tenant, k := range o.Keys {
		if err := keys.AddKey(tenant, k); err != nil {
			t.Fatalf("key: %v", err)
		}
	}
	cfg := enforce.DefaultConfig()
	if o.Config != nil {
		cfg = *o.Config
	}
	if o.Clock != nil {
		cfg.Clock = o.Clock
	}
	var pub actuator.Publisher = prod
	if o.Publisher != nil {
		pub = o.Publisher(prod)
	}
	st, err := actuator.New(enforce.New(cfg), pub, keys, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("stage: %v", err)
	}
	if o.Clock != nil {
		st.SetClock(o.Clock)
	}
	srv := service.NewGRPCServer()
	st.RegisterGRPC(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return &Server{Addr: ln.Addr().String(), Brokers: brokers, Stage: st, Producer: prod}
}

// Dial returns a client connection to s, closed when the test ends.
func (s *Server) Dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// WithKey returns ctx carrying key as "authorization: Bearer KEY".
func WithKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}
