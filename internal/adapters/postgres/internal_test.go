package postgres

import (
	"testing"
	"testing/fstest"
)

func TestEmbeddedMigrationsLoad(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %+v, want version 1 first", ms)
	}
}

func TestLoadMigrationsOrdersAndRefuses(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/0010_later.sql": file("B"), "migrations/0002_first.sql": file("A"), "migrations/README": file("x"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].version != 2 || ms[0].sql != "A" || ms[1].version != 10 || ms[1].name != "0010_later.sql" {
		t.Errorf("migrations = %+v, want 0002 then 0010", ms)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no version":     {"migrations/first.sql": file("A")},
		"zero version":   {"migrations/0000_zero.sql": file("A")},
		"shared version": {"migrations/0001_a.sql": file("A"), "migrations/1_b.sql": file("B")},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
}
