package clickhouse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// ErrMigrationChanged is returned by Migrate when a migration that the
// database records as applied no longer renders to the same SQL: applied
// migrations are immutable, changes go into a new file.
var ErrMigrationChanged = errors.New("applied migration changed")

// Migration is one embedded schema file, schema/NNN_name.sql, a
// text/template rendered with the server's feature gates.
type Migration struct {
	Version int
	Name    string
	source  string
}

var migrationName = regexp.MustCompile(`^([0-9]{3})_([a-z0-9_]+)\.sql$`)

// Migrations returns the embedded migrations in the order Migrate applies
// them (ascending version).
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(schemaFS, "schema")
	if err != nil {
		return nil, fmt.Errorf("read embedded schema: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("schema file %q: name is not NNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if prev, ok := seen[v]; ok {
			return nil, fmt.Errorf("schema files %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		src, err := fs.ReadFile(schemaFS, "schema/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read schema file %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: m[2], source: string(src)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// rollupSpec is one rollup table for the templates.
type rollupSpec struct {
	Granularity Granularity
	BucketType  string
	BucketExpr  string
	// TTLDays is how long buckets are kept where the server has TTL; 0 keeps
	// them forever.
	TTLDays int
}

// Table is the rollup table's name.
func (r rollupSpec) Table() string { return r.Granularity.Table() }

var rollupSpecs = []rollupSpec{
	{Minute, "DateTime('UTC')", "toStartOfMinute(occurred_at)", 35},
	{Hour, "DateTime('UTC')", "toStartOfHour(occurred_at)", 400},
	{Day, "Date", "toDate(occurred_at)", 0},
}

// SchemaData is what the schema templates see.
type SchemaData struct {
	Features
	// DB is the database every statement names.
	DB string
	// LC is the type of low-cardinality strings: LowCardinality(String) or
	// String.
	LC string
	// DT is the type of event timestamps: DateTime64(3, 'UTC') or
	// DateTime('UTC').
	DT       string
	Counters []Counter
	Levels   []RollupLevel
	Rollups  []rollupSpec
}

func newSchemaData(db string, f Features) SchemaData {
	d := SchemaData{
		Features: f, DB: db, LC: "String", DT: "DateTime('UTC')",
		Counters: Counters, Levels: RollupLevels, Rollups: rollupSpecs,
	}
	if f.LowCardinality {
		d.LC = "LowCardinality(String)"
	}
	if f.DateTime64 {
		d.DT = "DateTime64(3, 'UTC')"
	}
	return d
}

// Render renders m for database db on a server with features f and splits
// it into statements (one per query, as the native protocol requires).
func (m Migration) Render(db string, f Features) ([]string, error) {
	if !identRe.MatchString(db) {
		return nil, fmt.Errorf("database name %q is not a plain identifier", db)
	}
	tmpl, err := template.New(m.Name).Option("missingkey=error").Parse(m.source)
	if err != nil {
		return nil, fmt.Errorf("parse migration %03d_%s: %w", m.Version, m.Name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, newSchemaData(db, f)); err != nil {
		return nil, fmt.Errorf("render migration %03d_%s: %w", m.Version, m.Name, err)
	}
	return splitStatements(buf.String()), nil
}

// checksum identifies a migration's content independently of the server:
// it hashes the renderings with every gate off and every gate on, so any
// change to the template or to the Go data it reads shows.
func (m Migration) checksum() (string, error) {
	h := sha256.New()
	for _, f := range []Features{{}, {TTL: true, LowCardinality: true, DateTime64: true}} {
		stmts, err := m.Render("db", f)
		if err != nil {
			return "", err
		}
		for _, s := range stmts {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// splitStatements drops "--" comment lines and splits on semicolons that
// end a line. Schema files keep semicolons out of string literals.
func splitStatements(sql string) []string {
	var lines []string
	for _, l := range strings.Split(sql, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "--") {
			continue
		}
		lines = append(lines, strings.TrimRight(l, " \t"))
	}
	var out []string
	var cur []string
	flush := func() {
		s := strings.TrimSpace(strings.Join(cur, "\n"))
		if s != "" {
			out = append(out, s)
		}
		cur = cur[:0]
	}
	for _, l := range lines {
		if strings.HasSuffix(l, ";") {
			cur = append(cur, strings.TrimSuffix(l, ";"))
			flush()
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return out
}

const migrationsTableSQL = "CREATE TABLE IF NOT EXISTS `%s`.schema_migrations (\n" +
	"    version UInt32,\n" +
	"    name String,\n" +
	"    checksum String,\n" +
	"    applied_at DateTime('UTC') DEFAULT now()\n" +
	")\nENGINE = ReplacingMergeTree(applied_at)\nORDER BY version"

// Migrate brings the connection's current database to the newest schema:
// it creates schema_migrations, then renders and runs each embedded
// migration not recorded there, in version order, and records it after all
// its statements succeeded. Every statement is idempotent (IF NOT EXISTS),
// so a run interrupted half-way, or two services migrating at once, end in
// the same schema. Running it again changes nothing. It returns
// ErrMigrationChanged when an applied migration no longer matches.
func Migrate(ctx context.Context, conn driver.Conn) error {
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		return fmt.Errorf("current database: %w", err)
	}
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		return err
	}
	return MigrateWith(ctx, conn, db, FeaturesOf(v))
}

// MigrateWith is Migrate for an explicit database and feature set.
func MigrateWith(ctx context.Context, conn driver.Conn, db string, f Features) error {
	if !identRe.MatchString(db) {
		return fmt.Errorf("database name %q is not a plain identifier", db)
	}
	migrations, err := Migrations()
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, fmt.Sprintf(migrationsTableSQL, db)); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn, db)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		sum, err := m.checksum()
		if err != nil {
			return err
		}
		if prev, ok := applied[m.Version]; ok {
			if prev != sum {
				return fmt.Errorf("%w: %03d_%s (recorded %.12s, embedded %.12s)", ErrMigrationChanged, m.Version, m.Name, prev, sum)
			}
			continue
		}
		stmts, err := m.Render(db, f)
		if err != nil {
			return err
		}
		for i, s := range stmts {
			if err := conn.Exec(ctx, s); err != nil && !alreadyExists(err) {
				return fmt.Errorf("migration %03d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, db, m, sum); err != nil {
			return err
		}
	}
	return nil
}

// alreadyExists reports a TABLE_ALREADY_EXISTS (57) error, which IF NOT
// EXISTS can still raise when two processes create the same table at the
// same moment.
func alreadyExists(err error) bool {
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && ex.Code == 57
}

func appliedMigrations(ctx context.Context, conn driver.Conn, db string) (map[int]string, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(
		"SELECT version, argMax(checksum, applied_at) FROM `%s`.schema_migrations GROUP BY version", db))
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[int]string{}
	for rows.Next() {
		var (
			v   uint32
			sum string
		)
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("scan schema_migrations: %w", err)
		}
		out[int(v)] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return out, nil
}

func recordMigration(ctx context.Context, conn driver.Conn, db string, m Migration, sum string) error {
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO `%s`.schema_migrations (version, name, checksum)", db))
	if err != nil {
		return fmt.Errorf("record migration %03d: %w", m.Version, err)
	}
	defer func() { _ = batch.Close() }()
	if err := batch.Append(uint32(m.Version), m.Name, sum); err != nil {
		return fmt.Errorf("record migration %03d: %w", m.Version, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record migration %03d: %w", m.Version, err)
	}
	return nil
}
