package service

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flags binds typed configuration fields to command-line flags whose
// defaults come from environment variables: a flag beats its variable, which
// beats the built-in default. Parse errors of variables are collected and
// returned by Parse, so a bad SENDGUARD_* value stops the binary before it
// starts anything.
type Flags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// NewFlags returns a Flags for a binary named name; getenv is usually
// os.Getenv (tests pass a map's lookup).
func NewFlags(name string, getenv func(string) string) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &Flags{fs: fs, getenv: getenv}
}

// FlagSet exposes the underlying flag set (for usage output).
func (f *Flags) FlagSet() *flag.FlagSet { return f.fs }

func (f *Flags) env(env string) (string, bool) {
	if env == "" || f.getenv == nil {
		return "", false
	}
	v := f.getenv(env)
	return v, v != ""
}

func usage(u, env string) string {
	if env == "" {
		return u
	}
	return fmt.Sprintf("%s (env %s)", u, env)
}

// String binds a string.
func (f *Flags) String(p *string, name, env, def, u string) {
	if v, ok := f.env(env); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, usage(u, env))
}

// Int binds an int.
func (f *Flags) Int(p *int, name, env string, def int, u string) {
	if v, ok := f.env(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		} else {
			def = n
		}
	}
	f.fs.IntVar(p, name, def, usage(u, env))
}

// Int64 binds an int64.
func (f *Flags) Int64(p *int64, name, env string, def int64, u string) {
	if v, ok := f.env(env); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		} else {
			def = n
		}
	}
	f.fs.Int64Var(p, name, def, usage(u, env))
}

// Bool binds a bool.
func (f *Flags) Bool(p *bool, name, env string, def bool, u string) {
	if v, ok := f.env(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		} else {
			def = b
		}
	}
	f.fs.BoolVar(p, name, def, usage(u, env))
}

// Duration binds a duration ("250ms", "5s").
func (f *Flags) Duration(p *time.Duration, name, env string, def time.Duration, u string) {
	if v, ok := f.env(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", env, v, err))
		} else {
			def = d
		}
	}
	f.fs.DurationVar(p, name, def, usage(u, env))
}

// List binds a comma-separated list.
func (f *Flags) List(p *[]string, name, env, def, u string) {
	if v, ok := f.env(env); ok {
		def = v
	}
	*p = splitList(def)
	f.fs.Func(name, usage(u, env)+fmt.Sprintf(" (default %q)", def), func(s string) error {
		*p = splitList(s)
		return nil
	})
}

// Parse parses args and returns the first environment or flag error.
func (f *Flags) Parse(args []string) error {
	if len(f.errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(f.errs...))
	}
	if err := f.fs.Parse(args); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("config: unexpected arguments %q", f.fs.Args())
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
