package webhooksig

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the YAML form of the per-tenant webhook configuration
// (SENDGUARD_WEBHOOK_CONFIG):
//
//	tenants:
//	  acme:
//	    sendgrid_public_key: MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…   # base64 DER, as SendGrid shows it
//	    sendgrid_max_age: 10m          # optional; 0 = no timestamp age check
//	    mailgun_signing_key: key-…     # the HTTP webhook signing key
//	    mailgun_replay_window: 5m      # default 5m
//	    postmark: {user: pm-hook, password: …}
//	    sparkpost: {user: sp-hook, password: …}
//	    sns:
//	      cert_files: [sns-signing.pem]          # relative to this file
//	      allowed_topic_arns: [arn:aws:sns:us-east-1:123456789012:ses-events]
//	      confirm_subscriptions: true
//
// A tenant without an entry, or an entry without a provider, gets no
// signature check for that provider (the API key still applies).
type File struct {
	Tenants map[string]TenantFile `yaml:"tenants"`
}

// TenantFile is one tenant's section.
type TenantFile struct {
	SendGridPublicKey   string    `yaml:"sendgrid_public_key"`
	SendGridMaxAge      string    `yaml:"sendgrid_max_age"`
	MailgunSigningKey   string    `yaml:"mailgun_signing_key"`
	MailgunReplayWindow string    `yaml:"mailgun_replay_window"`
	Postmark            *UserPass `yaml:"postmark"`
	SparkPost           *UserPass `yaml:"sparkpost"`
	SNS                 *SNSFile  `yaml:"sns"`
}

// UserPass is a basic-auth pair.
type UserPass struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// SNSFile configures SNS verification for a tenant.
type SNSFile struct {
	CertFiles            []string `yaml:"cert_files"`
	AllowedTopicARNs     []string `yaml:"allowed_topic_arns"`
	ConfirmSubscriptions bool     `yaml:"confirm_subscriptions"`
}

// Tenant is one tenant's compiled verifiers; nil fields are unconfigured.
type Tenant struct {
	SendGrid  *SendGrid
	Mailgun   *Mailgun
	Postmark  *BasicAuth
	SparkPost *BasicAuth
	SNS       *SNS
}

// Set holds every tenant's verifiers. A nil *Set has none.
type Set struct {
	tenants map[string]*Tenant
}

// Tenant returns the tenant's verifiers, or nil when it configured none.
func (s *Set) Tenant(name string) *Tenant {
	if s == nil {
		return nil
	}
	return s.tenants[name]
}

// Tenants lists the configured tenants, sorted.
func (s *Set) Tenants() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.tenants))
	for t := range s.tenants {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Load reads and validates the configuration file at path. Relative
// certificate paths are resolved against the file's directory.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	set, err := Parse(data, func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		return os.ReadFile(name)
	})
	if err != nil {
		return nil, fmt.Errorf("webhook config %s: %w", path, err)
	}
	return set, nil
}

// Parse decodes and validates a configuration; readFile reads certificate
// files. Unknown keys, bad durations and bad key material are errors that
// name the tenant and the field, never the secret.
func Parse(data []byte, readFile func(string) ([]byte, error)) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	set := &Set{tenants: make(map[string]*Tenant)}
	var errs []error
	for _, name := range sortedKeys(f.Tenants) {
		t, err := compileTenant(f.Tenants[name], readFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", name, err))
			continue
		}
		if name == "" {
			errs = append(errs, errors.New("empty tenant name"))
			continue
		}
		set.tenants[name] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

func sortedKeys(m map[string]TenantFile) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func duration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative duration", field, s)
	}
	return d, nil
}

func compileTenant(tf TenantFile, readFile func(string) ([]byte, error)) (*Tenant, error) {
	t := &Tenant{}
	var errs []error
	if tf.SendGridPublicKey != "" {
		age, err := duration("sendgrid_max_age", tf.SendGridMaxAge)
		if err == nil {
			t.SendGrid, err = NewSendGrid(tf.SendGridPublicKey, age)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sendgrid_public_key: %w", err))
		}
	} else if tf.SendGridMaxAge != "" {
		errs = append(errs, errors.New("sendgrid_max_age without sendgrid_public_key"))
	}
	if tf.MailgunSigningKey != "" {
		win, err := duration("mailgun_replay_window", tf.MailgunReplayWindow)
		if err == nil && win > 24*time.Hour {
			err = fmt.Errorf("mailgun_replay_window %s: at most 24h", win)
		}
		if err == nil {
			t.Mailgun, err = NewMailgun(tf.MailgunSigningKey, win)
		}
		if err != nil {
			errs = append(errs, err)
		}
	} else if tf.MailgunReplayWindow != "" {
		errs = append(errs, errors.New("mailgun_replay_window without mailgun_signing_key"))
	}
	for _, p := range []struct {
		name string
		up   *UserPass
		dst  **BasicAuth
	}{{"postmark", tf.Postmark, &t.Postmark}, {"sparkpost", tf.SparkPost, &t.SparkPost}} {
		if p.up == nil {
			continue
		}
		b, err := NewBasicAuth(p.up.User, p.up.Password)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			continue
		}
		*p.dst = b
	}
	if tf.SNS != nil {
		var pems [][]byte
		readOK := true
		for _, name := range tf.SNS.CertFiles {
			b, err := readFile(name)
			if err != nil {
				errs = append(errs, fmt.Errorf("sns cert_files: %w", err))
				readOK = false
				continue
			}
			pems = append(pems, b)
		}
		if readOK {
			v, err := NewSNS(pems, tf.SNS.AllowedTopicARNs, tf.SNS.ConfirmSubscriptions)
			if err != nil {
				errs = append(errs, err)
			}
			t.SNS = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}
