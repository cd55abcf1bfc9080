package service

import (
	"context"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
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
