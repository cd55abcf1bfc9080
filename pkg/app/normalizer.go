package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/sendguard/sendguard/pkg/classify"
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/service"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/topics"
)

// AddNormalizer adds the raw → events consumer. stageOpts configure the
// stage (e.g. normalizer.WithProviderResolver from MXOptions.Resolver).
//
// One consumer per process, unlike the readers of sg.events.v1: when a
// second one joins the group, the envelopes handled but not yet committed
// by the first are normalized again, and their events appear twice on
// sg.events.v1 (admission drops the copies, but the topic is not clean).
// Scale the normalizer with instances and partitions (an instance joining
// does the same, once, when the deployment scales).
func AddNormalizer(e *Env, opts normalize.Options, stageOpts ...normalizer.Option) error {
	s, err := normalizer.New(e.Producer, opts, e.Registry, stageOpts...)
	if err != nil {
		return err
	}
	return e.runner(GroupNormalizer, topics.Raw, "normalizer", s)
}

// MXOptions configures MX-based provider detection for business domains
// (Google Workspace → gmail, Microsoft 365 → microsoft, …). It is off by
// default: with Enabled false the normalizer never touches the network.
type MXOptions struct {
	// Enabled turns lookups on (SENDGUARD_MX_LOOKUP).
	Enabled bool
	// Timeout bounds one lookup (SENDGUARD_MX_TIMEOUT).
	Timeout time.Duration
	// CacheSize bounds the cached domains (SENDGUARD_MX_CACHE_SIZE).
	CacheSize int
	// TTL is how long an answer is cached (SENDGUARD_MX_CACHE_TTL), and
	// NegativeTTL how long a failed lookup is (SENDGUARD_MX_NEGATIVE_TTL),
	// so that a dead resolver costs one timeout per domain per NegativeTTL.
	TTL, NegativeTTL time.Duration
}

// BindMX binds the MX lookup flags and variables to o.
func BindMX(f *service.Flags, o *MXOptions) {
	f.Bool(&o.Enabled, "mx-lookup", "SENDGUARD_MX_LOOKUP", false, "detect the provider of business recipient domains from their MX records (network lookups)")
	f.Duration(&o.Timeout, "mx-timeout", "SENDGUARD_MX_TIMEOUT", 2*time.Second, "timeout of one MX lookup")
	f.Int(&o.CacheSize, "mx-cache-size", "SENDGUARD_MX_CACHE_SIZE", 10000, "domains kept in the MX cache")
	f.Duration(&o.TTL, "mx-cache-ttl", "SENDGUARD_MX_CACHE_TTL", 6*time.Hour, "how long an MX answer is cached")
	f.Duration(&o.NegativeTTL, "mx-negative-ttl", "SENDGUARD_MX_NEGATIVE_TTL", 5*time.Minute, "how long a failed MX lookup is cached")
}

// Validate checks o; bounds apply only when lookups are enabled.
func (o MXOptions) Validate() error {
	if !o.Enabled {
		return nil
	}
	var errs []error
	if o.Timeout <= 0 || o.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("mx timeout %s: want (0, 1m]", o.Timeout))
	}
	if o.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("mx cache size %d: want ≥ 1", o.CacheSize))
	}
	if o.TTL <= 0 || o.NegativeTTL <= 0 {
		errs = append(errs, errors.New("mx cache ttls must be positive"))
	}
	return errors.Join(errs...)
}

// StageOptions returns the normalizer options o implies: none when lookups
// are off, else WithProviderResolver over a cached resolver using lookup
// (nil: the system resolver, net.DefaultResolver). Tests inject lookup.
func (o MXOptions) StageOptions(lookup classify.MXResolver) []normalizer.Option {
	if !o.Enabled {
		return nil
	}
	return []normalizer.Option{normalizer.WithProviderResolver(classify.NewProviderResolver(classify.ProviderResolverConfig{
		Resolver: lookup, Timeout: o.Timeout, TTL: o.TTL, NegativeTTL: o.NegativeTTL, MaxEntries: o.CacheSize,
	}))}
}
