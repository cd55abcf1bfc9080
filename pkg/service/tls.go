package service

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Client certificate policies of TLSFiles.ClientAuth.
const (
	// ClientAuthControl asks for a client certificate, verifies it against
	// the client CA when one is presented, and leaves it to the gRPC
	// interceptor (RequireClientCert) to refuse control-plane methods
	// without a verified one; ingest and Check keep working with
	// server-side TLS and an API key.
	ClientAuthControl = "control"
	// ClientAuthAll requires a verified client certificate on every TLS
	// connection (HTTP and gRPC) before any request is read.
	ClientAuthAll = "all"
)

// DefaultTLSCheckEvery is how often a TLSReloader compares the files on
// disk with what it serves.
const DefaultTLSCheckEvery = 5 * time.Second

// TLSFiles names the PEM files of a server's TLS configuration. The zero
// value is plaintext.
type TLSFiles struct {
	// Cert is the server certificate chain (leaf first); Key its private
	// key. Both or neither.
	Cert, Key string
	// ClientCA is a bundle of CA certificates that verify client
	// certificates; empty means client certificates are not asked for.
	ClientCA string
	// ClientAuth is ClientAuthControl (the default when empty) or
	// ClientAuthAll; it only matters with ClientCA.
	ClientAuth string
}

// Enabled reports whether TLS is configured.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" }

// Mode returns the client certificate policy: "" without a client CA,
// otherwise ClientAuthControl or ClientAuthAll.
func (f TLSFiles) Mode() string {
	switch {
	case f.ClientCA == "":
		return ""
	case f.ClientAuth == "":
		return ClientAuthControl
	}
	return f.ClientAuth
}

// Validate checks the configuration before anything starts: cert and key
// come together, both are readable and the key matches the certificate, the
// client CA bundle holds at least one certificate, and the client auth mode
// is known. It reads the files but keeps nothing.
func (f TLSFiles) Validate() error {
	if err := f.check(); err != nil || !f.Enabled() {
		return err
	}
	_, err := f.load()
	return err
}

// check validates the settings without reading the files.
func (f TLSFiles) check() error {
	var errs []error
	switch {
	case f.Cert == "" && f.Key != "":
		errs = append(errs, errors.New("tls: --tls-key given without --tls-cert"))
	case f.Cert != "" && f.Key == "":
		errs = append(errs, errors.New("tls: --tls-cert given without --tls-key"))
	}
	if !f.Enabled() && f.ClientCA != "" {
		errs = append(errs, errors.New("tls: --tls-client-ca needs --tls-cert and --tls-key"))
	}
	switch f.ClientAuth {
	case "", ClientAuthControl:
	case ClientAuthAll:
		if f.ClientCA == "" {
			errs = append(errs, errors.New("tls: --tls-client-auth all needs --tls-client-ca"))
		}
	default:
		errs = append(errs, fmt.Errorf("tls: --tls-client-auth %q: want control or all", f.ClientAuth))
	}
	return errors.Join(errs...)
}

// tlsMaterial is one loaded generation of the files, with the bytes it was
// parsed from so a reload can tell whether anything changed.
type tlsMaterial struct {
	certPEM, keyPEM, caPEM []byte
	cert                   tls.Certificate
	pool                   *x509.CertPool
}

func (f TLSFiles) read() (certPEM, keyPEM, caPEM []byte, err error) {
	if certPEM, err = os.ReadFile(f.Cert); err != nil {
		return nil, nil, nil, fmt.Errorf("tls cert: %w", err)
	}
	if keyPEM, err = os.ReadFile(f.Key); err != nil {
		return nil, nil, nil, fmt.Errorf("tls key: %w", err)
	}
	if f.ClientCA != "" {
		if caPEM, err = os.ReadFile(f.ClientCA); err != nil {
			return nil, nil, nil, fmt.Errorf("tls client ca: %w", err)
		}
	}
	return certPEM, keyPEM, caPEM, nil
}

func (f TLSFiles) load() (*tlsMaterial, error) {
	certPEM, keyPEM, caPEM, err := f.read()
	if err != nil {
		return nil, err
	}
	return f.parse(certPEM, keyPEM, caPEM)
}

// parse builds the material; errors name the files, never their contents.
func (f TLSFiles) parse(certPEM, keyPEM, caPEM []byte) (*tlsMaterial, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls cert %s and key %s: %w", f.Cert, f.Key, err)
	}
	m := &tlsMaterial{certPEM: certPEM, keyPEM: keyPEM, caPEM: caPEM, cert: cert}
	if f.ClientCA != "" {
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("tls client ca %s: no PEM certificate found", f.ClientCA)
		}
	}
	return m, nil
}

func (m *tlsMaterial) same(certPEM, keyPEM, caPEM []byte) bool {
	return bytes.Equal(m.certPEM, certPEM) && bytes.Equal(m.keyPEM, keyPEM) && bytes.Equal(m.caPEM, caPEM)
}

// TLSReloaderOptions tune NewTLSReloader.
type TLSReloaderOptions struct {
	// CheckEvery bounds how often the files are re-read (at a handshake,
	// never more than once per interval); default DefaultTLSCheckEvery.
	CheckEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger reports reloads and refused files (default: nothing).
	Logger *zap.Logger
}

// TLSReloader serves the certificate and client CA of TLSFiles and picks up
// new files without a restart: at a TLS handshake, at most once per
// CheckEvery, it re-reads the files and, when their bytes changed and they
// parse (key matching certificate), serves them from then on. Files that do
// not parse — a rotation caught between writing the certificate and the key
// — are logged once and the previous generation keeps being served until
// a later check finds a good pair. Established connections keep the
// certificate they were made with.
type TLSReloader struct {
	files  TLSFiles
	every  time.Duration
	now    func() time.Time
	logger *zap.Logger

	mu      sync.Mutex
	cur     *tlsMaterial
	checked time.Time
	// refused holds the bytes of the last generation that did not parse,
	// so a broken rotation is logged once, not at every check.
	refused *tlsMaterial
}

// NewTLSReloader loads files (validated as by TLSFiles.Validate).
func NewTLSReloader(files TLSFiles, o TLSReloaderOptions) (*TLSReloader, error) {
	if err := files.check(); err != nil {
		return nil, err
	}
	if !files.Enabled() {
		return nil, errors.New("tls: no certificate configured")
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = DefaultTLSCheckEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	m, err := files.load()
	if err != nil {
		return nil, err
	}
	return &TLSReloader{files: files, every: o.CheckEvery, now: o.Now, logger: o.Logger, cur: m, checked: o.Now()}, nil
}

// Files returns the configuration r serves.
func (r *TLSReloader) Files() TLSFiles { return r.files }

// Leaf returns the certificate currently served (its first in the chain).
func (r *TLSReloader) Leaf() (*x509.Certificate, error) {
	m := r.current()
	if m.cert.Leaf != nil {
		return m.cert.Leaf, nil
	}
	return x509.ParseCertificate(m.cert.Certificate[0])
}

// current returns the material to serve, re-reading the files first when
// the last check is older than CheckEvery.
func (r *TLSReloader) current() *tlsMaterial {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.every {
		return r.cur
	}
	r.checked = now
	if err := r.reloadLocked(); err != nil {
		r.logger.Warn("tls: keeping the current certificate", zap.Error(err))
	}
	return r.cur
}

// Reload re-reads the files now. It returns the error that keeps the
// current generation in service, if any.
func (r *TLSReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = r.now()
	return r.reloadLocked()
}

func (r *TLSReloader) reloadLocked() error {
	certPEM, keyPEM, caPEM, err := r.files.read()
	if err != nil {
		return err
	}
	if r.cur.same(certPEM, keyPEM, caPEM) {
		return nil
	}
	if r.refused != nil && r.refused.same(certPEM, keyPEM, caPEM) {
		return nil // already reported
	}
	m, err := r.files.parse(certPEM, keyPEM, caPEM)
	if err != nil {
		r.refused = &tlsMaterial{certPEM: certPEM, keyPEM: keyPEM, caPEM: caPEM}
		return err
	}
	r.cur, r.refused = m, nil
	fields := []zap.Field{zap.String("cert", r.files.Cert)}
	if leaf := m.cert.Leaf; leaf != nil {
		fields = append(fields, zap.String("subject", leaf.Subject.String()), zap.Time("not_after", leaf.NotAfter))
	}
	r.logger.Info("tls: certificate reloaded", fields...)
	return nil
}

// ServerConfig returns a server configuration that serves the current
// files at every handshake (GetConfigForClient), with clientAuth as the
// client certificate policy (verified against the client CA) and
// nextProtos as ALPN protocols ("h2" for gRPC; "h2", "http/1.1" for HTTP).
// TLS 1.2 is the minimum.
func (r *TLSReloader) ServerConfig(clientAuth tls.ClientAuthType, nextProtos ...string) *tls.Config {
	build := func(m *tlsMaterial) *tls.Config {
		c := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{m.cert},
			NextProtos:   nextProtos,
		}
		if m.pool != nil {
			c.ClientCAs, c.ClientAuth = m.pool, clientAuth
		}
		return c
	}
	base := build(r.current())
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return build(r.current()), nil }
	return base
}

// ClientTLSFiles names the PEM files of a client's TLS configuration.
type ClientTLSFiles struct {
	// On turns TLS on with the system roots when no CA is given.
	On bool
	// CA is a bundle of CAs that verify the server (default: system roots).
	CA string
	// Cert and Key are the client certificate for mTLS; both or neither.
	Cert, Key string
	// ServerName overrides the name checked in the server certificate
	// (default: the host of the address dialled).
	ServerName string
}

// Enabled reports whether the client uses TLS: On, or any file given.
func (f ClientTLSFiles) Enabled() bool { return f.On || f.CA != "" || f.Cert != "" || f.Key != "" }

// Config returns the client configuration, or nil for plaintext.
func (f ClientTLSFiles) Config() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		b, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate found", f.CA)
		}
	}
	switch {
	case f.Cert == "" && f.Key == "":
	case f.Cert == "" || f.Key == "":
		return nil, errors.New("tls: --tls-cert and --tls-key go together")
	default:
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls cert %s and key %s: %w", f.Cert, f.Key, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
