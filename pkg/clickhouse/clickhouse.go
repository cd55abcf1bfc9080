package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// DefaultDatabase is the database Open uses when Config.Database is empty.
const DefaultDatabase = "sendguard"

// Config says where the ClickHouse server is and how to log in.
type Config struct {
	// Addr is host:port of the native protocol (default port 9000).
	Addr string
	// Database is created when missing; default DefaultDatabase.
	Database string
	// Username and Password; the server's "default" user without a password
	// when both are empty.
	Username string
	Password string
	// DialTimeout bounds each connection attempt; default 5 s.
	DialTimeout time.Duration
}

// ErrInvalidConfig is returned by Open when the Config cannot be used.
var ErrInvalidConfig = errors.New("invalid clickhouse config")

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		return c, fmt.Errorf("%w: empty address", ErrInvalidConfig)
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if !identRe.MatchString(c.Database) {
		return c, fmt.Errorf("%w: database name %q is not a plain identifier", ErrInvalidConfig, c.Database)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	return c, nil
}

func (c Config) options(database string) *clickhouse.Options {
	return &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     []string{c.Addr},
		Auth: clickhouse.Auth{
			Database: database,
			Username: c.Username,
			Password: c.Password,
		},
		DialTimeout: c.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		ClientInfo: clickhouse.ClientInfo{
			Products: []struct{ Name, Version string }{{Name: "sendguard", Version: "1"}},
		},
	}
}

// Open connects to the server over the native protocol with LZ4
// compression, creates cfg.Database when it is missing and returns a
// connection pool whose default database is cfg.Database. It pings before
// returning, so a nil error means the server answered.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	boot, err := clickhouse.Open(cfg.options("default"))
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.Database+"`")
	closeErr := boot.Close()
	if err != nil {
		return nil, fmt.Errorf("create database %s on %s: %w", cfg.Database, cfg.Addr, err)
	}
	if closeErr != nil {
		return nil, fmt.Errorf("close bootstrap connection: %w", closeErr)
	}
	conn, err := clickhouse.Open(cfg.options(cfg.Database))
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// Version is a server version, e.g. 18.16.1.
type Version struct {
	Major, Minor, Patch uint64
}

// String formats v as major.minor.patch.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v >= major.minor.
func (v Version) AtLeast(major, minor uint64) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// ServerVersion asks the server for its version (from the handshake).
func ServerVersion(ctx context.Context, conn driver.Conn) (Version, error) {
	if err := ctx.Err(); err != nil {
		return Version{}, err
	}
	sv, err := conn.ServerVersion()
	if err != nil {
		return Version{}, fmt.Errorf("server version: %w", err)
	}
	return Version{Major: sv.Version.Major, Minor: sv.Version.Minor, Patch: sv.Version.Patch}, nil
}

// Features are the server capabilities the schema templates switch on.
// 18.16 (Debian bookworm) has none of them; every current release has all.
type Features struct {
	// TTL: table TTL expressions (19.6+).
	TTL bool
	// LowCardinality: the LowCardinality(String) type without experimental
	// settings (19.3+).
	LowCardinality bool
	// DateTime64: sub-second timestamps (20.1+).
	DateTime64 bool
}

// FeaturesOf derives the feature gates from a server version.
func FeaturesOf(v Version) Features {
	return Features{
		TTL:            v.AtLeast(19, 6),
		LowCardinality: v.AtLeast(19, 3),
		DateTime64:     v.AtLeast(20, 1),
	}
}
