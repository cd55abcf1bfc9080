package app

import (
	"github.com/sendguard/sendguard/pkg/normalize"
	"github.com/sendguard/sendguard/pkg/stage/normalizer"
	"github.com/sendguard/sendguard/pkg/topics"
)

// AddNormalizer adds the raw → events consumer.
func AddNormalizer(e *Env, opts normalize.Options) error {
	s, err := normalizer.New(e.Producer, opts, e.Registry)
	if err != nil {
		return err
	}
	return e.runner(GroupNormalizer, topics.Raw, "normalizer", s)
}
