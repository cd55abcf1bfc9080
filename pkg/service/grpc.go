package service

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// GRPCServer is a gRPC server with the standard health service and server
// reflection registered.
type GRPCServer struct {
	*grpc.Server
	Health *health.Server
}

// NewGRPCServer returns a server with health (overall status SERVING once
// Serve is called through Actor) and reflection.
func NewGRPCServer(opts ...grpc.ServerOption) *GRPCServer {
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &GRPCServer{Server: s, Health: h}
}

// SetServing sets the overall and every registered service's health status.
func (s *GRPCServer) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
	for name := range s.GetServiceInfo() {
		s.Health.SetServingStatus(name, st)
	}
}

// Shutdown marks the server NOT_SERVING, then stops it gracefully within
// grace, then forcibly.
func (s *GRPCServer) Shutdown(logger *zap.Logger, grace time.Duration) {
	s.SetServing(false)
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		logger.Warn("grpc graceful stop timed out; stopping", zap.Duration("grace", grace))
		s.Stop()
		<-done
	}
}

// VerifiedClient reports whether the peer of an incoming call presented a
// client certificate that verified against the server's client CA (TLS
// with at least one verified chain).
func VerifiedClient(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(info.State.VerifiedChains) > 0
}

// RequireClientCert returns interceptors that refuse, with
// codes.Unauthenticated, every call whose full method name starts with one
// of prefixes (e.g. "/sendguard.v1.ControlService/") unless VerifiedClient;
// other methods pass untouched. The server's TLS configuration must ask for
// client certificates (tls.VerifyClientCertIfGiven or stricter) for any
// call to pass.
func RequireClientCert(prefixes ...string) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	guarded := func(method string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(method, p) {
				return true
			}
		}
		return false
	}
	refuse := func(ctx context.Context, method string) error {
		if guarded(method) && !VerifiedClient(ctx) {
			return status.Error(codes.Unauthenticated, "this method requires a client certificate signed by the configured client CA")
		}
		return nil
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := refuse(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := refuse(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return h(srv, ss)
	}
	return unary, stream
}
