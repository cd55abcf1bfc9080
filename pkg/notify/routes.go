package notify

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Routes says where a tenant's alerts go: the tenant's own webhook URLs, or
// the default ones when the tenant has none.
type Routes struct {
	Default []string            `yaml:"default"`
	Tenants map[string][]string `yaml:"tenants"`
}

// For returns the webhook URLs of tenant's alerts (nil: none configured).
func (r Routes) For(tenant string) []string {
	if u, ok := r.Tenants[tenant]; ok && len(u) > 0 {
		return u
	}
	return r.Default
}

// Empty reports whether no URL is configured at all.
func (r Routes) Empty() bool {
	if len(r.Default) > 0 {
		return false
	}
	for _, u := range r.Tenants {
		if len(u) > 0 {
			return false
		}
	}
	return true
}

// Merge returns r with o's URLs added (duplicates dropped).
func (r Routes) Merge(o Routes) Routes {
	out := Routes{Default: appendNew(nil, r.Default, o.Default), Tenants: map[string][]string{}}
	for _, m := range []map[string][]string{r.Tenants, o.Tenants} {
		for t, u := range m {
			out.Tenants[t] = appendNew(out.Tenants[t], u)
		}
	}
	return out
}

func appendNew(dst []string, lists ...[]string) []string {
	for _, l := range lists {
		for _, u := range l {
			dup := false
			for _, d := range dst {
				dup = dup || d == u
			}
			if !dup {
				dst = append(dst, u)
			}
		}
	}
	return dst
}

// Validate checks that every URL is absolute http(s).
func (r Routes) Validate() error {
	var errs []error
	check := func(who, u string) {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s: webhook %q: want an http(s) URL", who, Redact(u)))
		}
	}
	for _, u := range r.Default {
		check("default", u)
	}
	names := make([]string, 0, len(r.Tenants))
	for t := range r.Tenants {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		if t == "" {
			errs = append(errs, errors.New("tenant name: empty"))
		}
		for _, u := range r.Tenants[t] {
			check("tenant "+t, u)
		}
	}
	return errors.Join(errs...)
}

// ParseRoutes parses the SENDGUARD_ALERT_WEBHOOKS form: comma-separated
// entries "URL" or "*=URL" (default, for every tenant without its own) and
// "TENANT=URL" (that tenant; repeat for several URLs).
func ParseRoutes(spec string) (Routes, error) {
	r := Routes{Tenants: map[string][]string{}}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		tenant, u := "*", item
		if i := strings.Index(item, "="); i > 0 && !strings.Contains(item[:i], "/") {
			tenant, u = strings.TrimSpace(item[:i]), strings.TrimSpace(item[i+1:])
		}
		if tenant == "*" {
			r.Default = appendNew(r.Default, []string{u})
		} else {
			r.Tenants[tenant] = appendNew(r.Tenants[tenant], []string{u})
		}
	}
	return r, r.Validate()
}

// LoadRoutes reads a YAML file:
//
//	default: [https://hooks.slack.com/services/…]
//	tenants:
//	  acme: [https://hooks.slack.com/services/…]
func LoadRoutes(path string) (Routes, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Routes{}, fmt.Errorf("alert webhooks file: %w", err)
	}
	var r Routes
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return Routes{}, fmt.Errorf("alert webhooks file %s: %w", path, err)
	}
	if err := r.Validate(); err != nil {
		return Routes{}, fmt.Errorf("alert webhooks file %s: %w", path, err)
	}
	return r, nil
}

// Redact returns u without its path and query, which carry the secret of
// a Slack-style webhook: safe for logs and errors.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "<invalid url>"
	}
	return p.Scheme + "://" + p.Host + "/…"
}
