// Package service is the runtime every Sendguard binary shares: the zap
// logger, typed configuration from environment and flags, the readiness
// prober, the admin HTTP server (/healthz, /livez, /readyz, /metrics), the
// gRPC server with health and reflection, and a run group that stops every
// actor when the first one returns or SIGINT/SIGTERM arrives.
//
// Shutdown order on a signal: readiness goes NotReady and gRPC health
// NOT_SERVING (load balancers stop sending), intake servers stop accepting
// and finish in-flight requests within a grace period, consumers drain and
// commit, producers flush, connections close.
package service
