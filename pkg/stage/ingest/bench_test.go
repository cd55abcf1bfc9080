package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// benchBatch is the events per NDJSON request or gRPC stream message.
const benchBatch = 500

// benchStage is a stage in front of an embedded broker with a data dir
// (as the devstack runs it), with the rate limit off.
func benchStage(b *testing.B) *Stage {
	b.Helper()
	pub, _ := brokerProducer(b, b.TempDir())
	s, err := New(Config{TenantRate: -1}, testKeys(b), pub, edgeValidator(time.Now), zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func reportEvents(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHTTPNDJSON posts NDJSON batches of canonical events over HTTP
// from parallel clients; every request must be answered 202.
//
//	go test -run XXX -bench HTTPNDJSON -benchtime 200x ./pkg/stage/ingest/
func BenchmarkHTTPNDJSON(b *testing.B) {
	s := benchStage(b)
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var seq, events atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var body bytes.Buffer
		for pb.Next() {
			body.Reset()
			for range benchBatch {
				n := seq.Add(1)
				fmt.Fprintf(&body, `{"event_id":"b-%d","type":"delivered","occurred_at":"2026-11-20T10:00:00Z","sender":"ann@acme.io","recipient":"r%d@example.com","campaign":"c1"}`+"\n", n, n%5000)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", bytes.NewReader(body.Bytes()))
			req.Header.Set("Authorization", "Bearer k-acme")
			req.Header.Set("Content-Type", "application/x-ndjson")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			msg := drain(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d: %s", resp.StatusCode, msg)
				return
			}
			events.Add(benchBatch)
		}
	})
	reportEvents(b, events.Load())
}

// BenchmarkGRPCPublishStream sends batches of canonical events on
// client-streaming PublishStream calls (one stream per parallel client);
// every item must be ACCEPTED.
//
//	go test -run XXX -bench GRPCPublishStream -benchtime 200x ./pkg/stage/ingest/
func BenchmarkGRPCPublishStream(b *testing.B) {
	s := benchStage(b)
	srv := grpc.NewServer()
	s.RegisterGRPC(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := sgv1.NewIngestServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer k-acme")
	at := timestamppb.New(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	var seq, events atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream, err := client.PublishStream(ctx)
		if err != nil {
			b.Error(err)
			return
		}
		sent := int64(0)
		for pb.Next() {
			items := make([]*sgv1.PublishItem, benchBatch)
			for i := range items {
				n := seq.Add(1)
				items[i] = &sgv1.PublishItem{Item: &sgv1.PublishItem_Event{Event: &sgv1.Event{
					EventId: fmt.Sprintf("g-%d", n), Type: sgv1.EventType_EVENT_TYPE_DELIVERED, OccurredAt: at,
					Sender: "ann@acme.io", Recipient: fmt.Sprintf("r%d@example.com", n%5000), Campaign: "c1",
				}}}
			}
			if err := stream.Send(&sgv1.PublishStreamRequest{Items: items}); err != nil {
				b.Error(err)
				return
			}
			sent += benchBatch
		}
		resp, err := stream.CloseAndRecv()
		if err != nil {
			b.Error(err)
			return
		}
		if int64(resp.GetAccepted()) != sent {
			b.Errorf("accepted %d of %d", resp.GetAccepted(), sent)
		}
		events.Add(int64(resp.GetAccepted()))
	})
	reportEvents(b, events.Load())
}
