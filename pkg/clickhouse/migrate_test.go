package clickhouse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/sendguard/sendguard/pkg/clickhouse/clickhousetest"
)

// TestSchemaSnapshots compares the rendered schema for 18.16 and for a
// current release with testdata/*.sql. Regenerate with
// REGENERATE_SNAPSHOTS=1 go test ./clickhouse/ -run TestSchemaSnapshots.
func TestSchemaSnapshots(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		version Version
	}{
		{"schema_18.16.sql", Version{18, 16, 1}},
		{"schema_25.8.sql", Version{25, 8, 0}},
		{"queries.sql", Version{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var b strings.Builder
			list := ms
			if tt.file == "queries.sql" {
				writeQueries(t, &b)
				list = nil
			}
			for _, m := range list {
				stmts, err := m.Render("sendguard", FeaturesOf(tt.version))
				if err != nil {
					t.Fatal(err)
				}
				b.WriteString("-- " + m.Name + "\n")
				for _, s := range stmts {
					b.WriteString(s + ";\n\n")
				}
			}
			got := b.String()
			path := filepath.Join("testdata", tt.file)
			if os.Getenv("REGENERATE_SNAPSHOTS") != "" {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read snapshot (REGENERATE_SNAPSHOTS=1 writes it): %v", err)
			}
			if got != string(want) {
				t.Errorf("rendered schema differs from %s; rerun with REGENERATE_SNAPSHOTS=1 and review the diff", path)
			}
		})
	}
}

// writeQueries writes every query the package builds at run time.
func writeQueries(t *testing.T, b *strings.Builder) {
	for _, tb := range []Table{EventsTable, DecisionsTable, CommandsTable, DeadLettersTable} {
		b.WriteString(tb.InsertSQL() + ";\n\n")
	}
	for _, g := range []Granularity{Minute, Hour, Day} {
		b.WriteString(RollupCountsSQL(g) + ";\n\n")
	}
	for _, l := range RollupLevels {
		q, err := EventCountsSQL(l.Level)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(q + ";\n\n")
	}
}

func TestFeaturesOf(t *testing.T) {
	tests := []struct {
		v    Version
		want Features
	}{
		{Version{18, 16, 1}, Features{}},
		{Version{19, 3, 0}, Features{LowCardinality: true}},
		{Version{19, 6, 0}, Features{LowCardinality: true, TTL: true}},
		{Version{20, 1, 0}, Features{LowCardinality: true, TTL: true, DateTime64: true}},
		{Version{25, 8, 2}, Features{LowCardinality: true, TTL: true, DateTime64: true}},
	}
	for _, tt := range tests {
		t.Run(tt.v.String(), func(t *testing.T) {
			if got := FeaturesOf(tt.v); got != tt.want {
				t.Errorf("FeaturesOf(%s) = %+v, want %+v", tt.v, got, tt.want)
			}
		})
	}
}

func TestRenderGates(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var old, cur strings.Builder
	for _, m := range ms {
		a, err := m.Render("db", Features{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Render("db", Features{TTL: true, LowCardinality: true, DateTime64: true})
		if err != nil {
			t.Fatal(err)
		}
		old.WriteString(strings.Join(a, "\n"))
		cur.WriteString(strings.Join(b, "\n"))
	}
	for _, banned := range []string{"LowCardinality", "TTL", "DateTime64", "toStartOfInterval"} {
		if strings.Contains(old.String(), banned) {
			t.Errorf("18.16 schema uses %s", banned)
		}
	}
	for _, needed := range []string{"LowCardinality(String)", "TTL toDate(bucket)", "DateTime64(3, 'UTC')"} {
		if !strings.Contains(cur.String(), needed) {
			t.Errorf("current schema lacks %s", needed)
		}
	}
	if _, err := ms[0].Render("bad-name;", Features{}); err == nil {
		t.Error("Render accepted a database name that is not an identifier")
	}
}

// migrationsFake is a fake conn whose schema_migrations reads return what
// was inserted into it.
func migrationsFake() *clickhousetest.Conn {
	c := &clickhousetest.Conn{Version: proto.Version{Major: 18, Minor: 16, Patch: 1}}
	var mu sync.Mutex
	c.OnQuery = func(query string, _ []any) ([][]any, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case query == "SELECT currentDatabase()":
			return [][]any{{"sendguard"}}, nil
		case strings.Contains(query, "schema_migrations"):
			var out [][]any
			for _, r := range c.InsertedRows("schema_migrations") {
				out = append(out, []any{r[0], r[2]})
			}
			return out, nil
		}
		return nil, nil
	}
	return c
}

func execs(c *clickhousetest.Conn) []string {
	var out []string
	for _, q := range c.Queries() {
		if q.Method == "Exec" {
			out = append(out, q.SQL)
		}
	}
	return out
}

func TestMigrateTwiceWithFake(t *testing.T) {
	ctx := context.Background()
	c := migrationsFake()
	if err := Migrate(ctx, c); err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	ms, _ := Migrations()
	first := execs(c)
	wantStmts := 1 // schema_migrations
	for _, m := range ms {
		s, _ := m.Render("sendguard", Features{})
		wantStmts += len(s)
	}
	if len(first) != wantStmts {
		t.Errorf("first Migrate ran %d statements, want %d", len(first), wantStmts)
	}
	if got := len(c.InsertedRows("schema_migrations")); got != len(ms) {
		t.Errorf("recorded %d migrations, want %d", got, len(ms))
	}
	if err := Migrate(ctx, c); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	second := execs(c)[len(first):]
	if len(second) != 1 || !strings.Contains(second[0], "schema_migrations") {
		t.Errorf("second Migrate ran %q, want only the schema_migrations bootstrap", second)
	}
	if got := len(c.InsertedRows("schema_migrations")); got != len(ms) {
		t.Errorf("after second Migrate %d migrations recorded, want %d", got, len(ms))
	}
	for _, s := range first {
		if !strings.Contains(s, "IF NOT EXISTS") {
			t.Errorf("statement is not idempotent: %.80s", s)
		}
	}
}

func TestMigrateUsesServerFeatures(t *testing.T) {
	c := migrationsFake()
	c.Version = proto.Version{Major: 25, Minor: 8, Patch: 1}
	if err := Migrate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(execs(c), "\n")
	for _, want := range []string{"LowCardinality(String)", "DateTime64(3, 'UTC')", "TTL "} {
		if !strings.Contains(all, want) {
			t.Errorf("migration on 25.8 lacks %s", want)
		}
	}
}

func TestMigrateRefusesChangedMigration(t *testing.T) {
	c := &clickhousetest.Conn{}
	c.OnQuery = func(query string, _ []any) ([][]any, error) {
		if strings.Contains(query, "schema_migrations") {
			return [][]any{{uint32(1), "not-the-checksum"}}, nil
		}
		return [][]any{{"sendguard"}}, nil
	}
	err := Migrate(context.Background(), c)
	if !errors.Is(err, ErrMigrationChanged) {
		t.Fatalf("Migrate = %v, want ErrMigrationChanged", err)
	}
}

func TestMigrateStopsOnError(t *testing.T) {
	c := migrationsFake()
	boom := errors.New("boom")
	c.OnExec = func(query string, _ []any) error {
		if strings.Contains(query, ".decisions") {
			return boom
		}
		return nil
	}
	if err := Migrate(context.Background(), c); !errors.Is(err, boom) {
		t.Fatalf("Migrate = %v, want boom", err)
	}
	// 001 recorded, 002 (failed) and later not.
	rows := c.InsertedRows("schema_migrations")
	if len(rows) != 1 || rows[0][0] != uint32(1) {
		t.Errorf("recorded %v, want only migration 1", rows)
	}
}

func TestMigrateToleratesConcurrentCreate(t *testing.T) {
	c := migrationsFake()
	c.OnExec = func(query string, _ []any) error {
		if strings.Contains(query, "rollup_hour_mv") {
			return &clickhouse.Exception{Code: 57, Message: "Table rollup_hour_mv already exists"}
		}
		return nil
	}
	if err := Migrate(context.Background(), c); err != nil {
		t.Fatalf("Migrate with a concurrently created view: %v", err)
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- c;\nCREATE A (\n x;y\n);\n\n  -- d\nCREATE B;\nSELECT 1")
	want := []string{"CREATE A (\n x;y\n)", "CREATE B", "SELECT 1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitStatements = %q, want %q", got, want)
	}
}
