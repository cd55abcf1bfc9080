package rules

import (
	_ "embed"
	"fmt"
	"sync"
)

//go:embed default.yaml
var defaultYAML []byte

var (
	defaultOnce sync.Once
	defaultSet  *RuleSet
)

// DefaultYAML returns the source of the default rule pack.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the default rule pack, which reproduces the seed
// documents; every rule cites its seed. It panics only if the embedded file
// is invalid, which the package tests rule out.
func Default() *RuleSet {
	defaultOnce.Do(func() {
		rs, _, err := Parse(defaultYAML, "default.yaml")
		if err != nil {
			panic(fmt.Sprintf("rules: embedded default pack: %v", err))
		}
		defaultSet = rs
	})
	return defaultSet
}
