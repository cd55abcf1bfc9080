package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sendguard/sendguard/pkg/canonical"
	"github.com/sendguard/sendguard/pkg/topics"
	sgv1 "github.com/sendguard/sendguard/proto/gen/go/sendguard/v1"
)

// RegisterGRPC registers IngestService on s.
func (s *Stage) RegisterGRPC(srv grpc.ServiceRegistrar) {
	sgv1.RegisterIngestServiceServer(srv, &grpcServer{s: s})
}

type grpcServer struct {
	sgv1.UnimplementedIngestServiceServer
	s *Stage
}

var _ sgv1.IngestServiceServer = (*grpcServer)(nil)

func (g *grpcServer) tenant(ctx context.Context) (string, error) {
	t, err := g.s.keys.TenantFromGRPC(ctx)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	return t, nil
}

// Publish accepts a batch; each item gets a result in request order.
func (g *grpcServer) Publish(ctx context.Context, req *sgv1.PublishRequest) (*sgv1.PublishResponse, error) {
	tenant, err := g.tenant(ctx)
	if err != nil {
		return nil, err
	}
	if len(req.GetItems()) > g.s.cfg.MaxEvents {
		return nil, status.Errorf(codes.InvalidArgument, "%d items exceed the limit of %d per batch", len(req.GetItems()), g.s.cfg.MaxEvents)
	}
	results := g.publishItems(ctx, tenant, req.GetItems(), 0)
	resp := &sgv1.PublishResponse{Results: results}
	resp.Accepted, resp.Rejected = tally(results)
	return resp, nil
}

// PublishStream accepts batches until the client closes the stream, then
// answers with every item's result in order.
func (g *grpcServer) PublishStream(stream grpc.ClientStreamingServer[sgv1.PublishStreamRequest, sgv1.PublishStreamResponse]) error {
	tenant, err := g.tenant(stream.Context())
	if err != nil {
		return err
	}
	var results []*sgv1.ItemResult
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			resp := &sgv1.PublishStreamResponse{Results: results}
			resp.Accepted, resp.Rejected = tally(results)
			return stream.SendAndClose(resp)
		}
		if err != nil {
			return err
		}
		if len(req.GetItems()) > g.s.cfg.MaxEvents {
			return status.Errorf(codes.InvalidArgument, "%d items exceed the limit of %d per batch", len(req.GetItems()), g.s.cfg.MaxEvents)
		}
		results = append(results, g.publishItems(stream.Context(), tenant, req.GetItems(), len(results))...)
	}
}

func tally(results []*sgv1.ItemResult) (accepted, rejected int32) {
	for _, r := range results {
		if r.GetStatus() == sgv1.ItemStatus_ITEM_STATUS_ACCEPTED {
			accepted++
		} else {
			rejected++
		}
	}
	return accepted, rejected
}

// publishItems validates every item, publishes the valid ones in one
// acknowledged write, and returns a result per item.
func (g *grpcServer) publishItems(ctx context.Context, tenant string, items []*sgv1.PublishItem, base int) []*sgv1.ItemResult {
	s := g.s
	now := s.cfg.Now()
	results := make([]*sgv1.ItemResult, len(items))
	var (
		envs   []*sgv1.RawEnvelope
		keys   [][]byte
		idx    []int
		events int
		// Canonical events travel together: length-delimited in
		// envelopes of up to maxEventsEnvelope bytes (the normalizer
		// splits them), each item pointing at its envelope.
		chunk      []byte
		chunkItems []int
	)
	seal := func() {
		if len(chunkItems) == 0 {
			return
		}
		env := s.envelope(tenant, sgv1.Source_SOURCE_GRPC, canonical.DelimitedEventsContentType, chunk, nil, "")
		for _, i := range chunkItems {
			results[i].EnvelopeId = env.GetEnvelopeId()
			idx = append(idx, i)
		}
		envs, keys = append(envs, env), append(keys, topics.Key(tenant, env.GetEnvelopeId()))
		chunk, chunkItems = nil, nil
	}
	for i, it := range items {
		res := &sgv1.ItemResult{Index: int32(base + i)}
		results[i] = res
		var env *sgv1.RawEnvelope
		var key []byte
		switch x := it.GetItem().(type) {
		case *sgv1.PublishItem_Event:
			ev := x.Event
			err := canonical.ValidateAt(ev, now)
			if err == nil && ev.GetTenant() != "" && ev.GetTenant() != tenant {
				err = &canonical.FieldError{Field: "tenant", Msg: "does not match the API key's tenant"}
			}
			if err != nil {
				invalid(res, err)
				continue
			}
			size := proto.Size(ev)
			if len(chunk) > 0 && len(chunk)+delimitedLen(size) > maxEventsEnvelope {
				seal()
			}
			next, err := appendDelimited(chunk, ev, size)
			if err != nil {
				invalid(res, err)
				continue
			}
			chunk = next
			chunkItems = append(chunkItems, i)
			res.EventId = ev.GetEventId()
			events++
			continue
		case *sgv1.PublishItem_Raw:
			src := x.Raw.GetSource()
			if src == sgv1.Source_SOURCE_UNSPECIFIED || src == sgv1.Source_SOURCE_GRPC {
				invalid(res, &canonical.FieldError{Field: "raw.source", Msg: "must name a provider source"})
				continue
			}
			if len(x.Raw.GetPayload()) == 0 {
				invalid(res, &canonical.FieldError{Field: "raw.payload", Msg: "empty"})
				continue
			}
			env = s.envelope(tenant, src, x.Raw.GetContentType(), x.Raw.GetPayload(), nil, "")
			n := 1
			if s.validate != nil {
				var err error
				if n, err = s.validate(env); err != nil {
					invalid(res, err)
					continue
				}
			}
			events += max(n, 1)
			key = topics.Key(tenant, env.GetEnvelopeId())
		default:
			invalid(res, &canonical.FieldError{Field: "item", Msg: "empty item"})
			continue
		}
		res.EnvelopeId = env.GetEnvelopeId()
		envs, keys, idx = append(envs, env), append(keys, key), append(idx, i)
	}
	seal()
	if len(envs) == 0 {
		return results
	}
	status := sgv1.ItemStatus_ITEM_STATUS_ACCEPTED
	var errText string
	if wait := s.limits.take(tenant, events, s.cfg.Now()); wait > 0 {
		s.limited.WithLabelValues(tenant).Add(float64(events))
		s.rejected.WithLabelValues("grpc", tenant, "rate_limited").Inc()
		status = sgv1.ItemStatus_ITEM_STATUS_UNAVAILABLE
		errText = fmt.Sprintf("not accepted: tenant rate limit of %d events/s exceeded; retry after %s", s.cfg.TenantRate, wait.Round(time.Millisecond))
	} else if err := s.publish(ctx, envs, keys); err != nil {
		s.limits.refund(tenant, events, s.cfg.Now())
		status, errText = sgv1.ItemStatus_ITEM_STATUS_UNAVAILABLE, "not accepted: "+err.Error()
	} else {
		s.accepted.WithLabelValues("grpc", tenant).Add(float64(len(idx)))
	}
	for _, i := range idx {
		results[i].Status = status
		results[i].Error = errText
		if status != sgv1.ItemStatus_ITEM_STATUS_ACCEPTED {
			results[i].EnvelopeId = ""
		}
	}
	return results
}

func invalid(res *sgv1.ItemResult, err error) {
	res.Status = sgv1.ItemStatus_ITEM_STATUS_INVALID
	res.Error = err.Error()
	var fe *canonical.FieldError
	if errors.As(err, &fe) {
		res.Field = fe.Field
	}
}
