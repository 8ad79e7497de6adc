package layers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/layers"
)

const module = "example.com/app"

// table is a small layer table in ARCHITECTURE.md's grammar, shaped like
// the real one.
const table = `
Some prose before the table.

| package | holds | may import | its tests may also import |
| --- | --- | --- | --- |
| ` + "`internal/domain`" + ` | types | ` + "`std`, `!net/http`, `!database/sql`" + ` | — |
| ` + "`internal/ports`" + ` | interfaces | ` + "`std`, `internal/domain`" + ` |
| ` + "`internal/infra`" + ` | config, pools | ` + "`std`, `internal/domain`, `pgx`" + ` | ` + "`internal/pgtest`" + ` |
| ` + "`internal/adapters/httpapi`" + ` | HTTP | ` + "`std`, `internal/domain`, `chi`" + ` |
| ` + "`internal/adapters/llm`" + ` | shared provider code | ` + "`std`, `internal/domain`" + ` |
| ` + "`internal/adapters/llm/*`" + ` | one provider each | ` + "`std`, `internal/domain`, `internal/ports`, `internal/adapters/llm`" + ` | ` + "`internal/adapters/llm/llmtest`" + ` |
| ` + "`internal/pgtest`" + ` | test databases | ` + "`std`, `pgx`" + ` |
| ` + "`cmd/app`" + ` | wiring | ` + "`everything`" + ` |

| name | stands for |
| --- | --- |
| ` + "`pgx`" + ` | ` + "`github.com/jackc/pgx/v5/...`" + ` |
| ` + "`chi`" + ` | ` + "`github.com/go-chi/chi/v5/...`" + ` |
`

// clean is a graph the table allows.
func clean() []layers.Package {
	return []layers.Package{
		{Path: module + "/internal/domain", Imports: []string{"errors", "time"}, TestImports: []string{"testing", module + "/internal/domain"}},
		{Path: module + "/internal/ports", Imports: []string{"context", module + "/internal/domain"}},
		{Path: module + "/internal/infra", Imports: []string{module + "/internal/domain", "github.com/jackc/pgx/v5/pgxpool"},
			TestImports: []string{module + "/internal/pgtest"}},
		{Path: module + "/internal/adapters/httpapi", Imports: []string{"net/http", "github.com/go-chi/chi/v5", module + "/internal/domain"}},
		{Path: module + "/internal/adapters/llm", Imports: []string{module + "/internal/domain"}},
		{Path: module + "/internal/adapters/llm/openai", Imports: []string{"net/http", module + "/internal/adapters/llm", module + "/internal/ports"},
			TestImports: []string{module + "/internal/adapters/llm/llmtest"}},
		{Path: module + "/internal/adapters/llm/llmtest", Imports: []string{module + "/internal/ports"}},
		{Path: module + "/internal/pgtest", Imports: []string{"github.com/jackc/pgx/v5"}},
		{Path: module + "/cmd/app", Imports: []string{module + "/internal/infra", "go.uber.org/fx"}},
	}
}

func rules(t *testing.T) *layers.Rules {
	t.Helper()
	r, err := layers.Parse(table, module)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

// plant adds an import to one package of the clean graph.
func plant(pkg, imp string, test bool) []layers.Package {
	g := clean()
	for i := range g {
		if g[i].Path == module+"/"+pkg {
			if test {
				g[i].TestImports = append(g[i].TestImports, imp)
			} else {
				g[i].Imports = append(g[i].Imports, imp)
			}
			return g
		}
	}
	g = append(g, layers.Package{Path: module + "/" + pkg, Imports: []string{imp}})
	return g
}

func TestCleanGraphPasses(t *testing.T) {
	if v := rules(t).Check(clean()); len(v) != 0 {
		t.Fatalf("violations in a clean graph: %v", v)
	}
}

// TestPlantedViolationsFail plants each violation the issue found passing
// the old deny-list rules, and a few more, and wants exactly it reported.
func TestPlantedViolationsFail(t *testing.T) {
	for _, tc := range []struct {
		name, pkg, imp string
		test           bool
	}{
		{"a provider adapter imports infra", "internal/adapters/llm/openai", module + "/internal/infra", false},
		{"one provider imports another", "internal/adapters/llm/x", module + "/internal/adapters/llm/openai", false},
		{"httpapi imports infra", "internal/adapters/httpapi", module + "/internal/infra", false},
		{"the domain imports a third-party module", "internal/domain", "github.com/shopspring/decimal", false},
		{"the domain imports net/http", "internal/domain", "net/http", false},
		{"ports import pgx", "internal/ports", "github.com/jackc/pgx/v5", false},
		{"a test-only import in production code", "internal/infra", module + "/internal/pgtest", false},
		{"a test imports what its row does not allow", "internal/domain", module + "/internal/pgtest", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := rules(t).Check(plant(tc.pkg, tc.imp, tc.test))
			if len(v) != 1 {
				t.Fatalf("violations = %v, want exactly one", v)
			}
			got := v[0]
			if got.Package != tc.pkg || module+"/"+got.Import != tc.imp && got.Import != tc.imp || got.Test != tc.test {
				t.Errorf("violation = %+v, want %s importing %s (test %v)", got, tc.pkg, tc.imp, tc.test)
			}
			msg := got.Error()
			for _, want := range []string{tc.pkg, got.Import, "ARCHITECTURE.md", "row `", "Remove the import"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not say %q", msg, want)
				}
			}
		})
	}
}

func TestPackageWithoutRowFails(t *testing.T) {
	g := append(clean(), layers.Package{Path: module + "/internal/newthing", Imports: []string{"fmt", module + "/internal/domain"}})
	v := rules(t).Check(g)
	if len(v) != 1 || v[0].Package != "internal/newthing" || v[0].Import != "" {
		t.Fatalf("violations = %v, want one missing row for internal/newthing", v)
	}
	msg := v[0].Error()
	for _, want := range []string{"has no row", "| `internal/newthing` |", "## The layers", "`std`, `internal/domain`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not say %q", msg, want)
		}
	}
}

func TestExactRowWinsOverWildcard(t *testing.T) {
	r, err := layers.Parse(table+"\n| package | holds | may import |\n| --- | --- | --- |\n| `internal/adapters/llm/bedrock` | Bedrock | `std`, `internal/ports`, `github.com/aws/aws-sdk-go-v2/...` |\n", module)
	if err != nil {
		t.Fatal(err)
	}
	g := append(clean(), layers.Package{Path: module + "/internal/adapters/llm/bedrock", Imports: []string{"github.com/aws/aws-sdk-go-v2/aws"}})
	if v := r.Check(g); len(v) != 0 {
		t.Errorf("bedrock's own row not used: %v", v)
	}
	g = append(clean(), layers.Package{Path: module + "/internal/adapters/llm/other", Imports: []string{"github.com/aws/aws-sdk-go-v2/aws"}})
	if v := r.Check(g); len(v) != 1 {
		t.Errorf("another provider may import bedrock's SDK: %v", v)
	}
}

func TestParseRefusesWhatItCannotRead(t *testing.T) {
	for name, md := range map[string]string{
		"prose in a cell":  "| package | holds | may import |\n|---|---|---|\n| `internal/x` | x | domain, ports |\n",
		"unknown name":     "| package | holds | may import |\n|---|---|---|\n| `internal/x` | x | `nosuchname` |\n",
		"two rows":         "| package | holds | may import |\n|---|---|---|\n| `internal/x` | x | `std` |\n| `internal/x` | x | `std` |\n",
		"no table":         "# nothing here\n",
		"package not code": "| package | holds | may import |\n|---|---|---|\n| internal x | x | `std` |\n",
	} {
		if _, err := layers.Parse(md, module); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}

// listed is what `go list -json` says of one package.
type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// TestRepositoryFollowsTheLayerTable checks every package of this module,
// integration tests included, against ARCHITECTURE.md's layer table.
func TestRepositoryFollowsTheLayerTable(t *testing.T) {
	root := moduleRoot(t)
	md, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	mod := goCmd(t, root, "list", "-m")
	r, err := layers.Parse(string(md), strings.TrimSpace(string(mod)))
	if err != nil {
		t.Fatalf("ARCHITECTURE.md's layer table cannot be read:\n%v", err)
	}
	touchSources(t, root)
	out := goCmd(t, root, "list", "-e", "-tags", "integration", "-json", "./...")
	var pkgs []layers.Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, layers.Package{Path: p.ImportPath, Imports: p.Imports,
			TestImports: append(p.TestImports, p.XTestImports...)})
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; the check would prove nothing", len(pkgs))
	}
	for _, v := range r.Check(pkgs) {
		t.Error(v)
	}
}

// touchSources reads every directory of the module and stats every Go file
// in it, so that go test's cache, which records what a test opens, runs
// this test again when a package or an import changes; it cannot see what
// the go list child process reads.
func touchSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	gomod := strings.TrimSpace(string(goCmd(t, ".", "env", "GOMOD")))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("not inside a Go module")
	}
	return filepath.Dir(gomod)
}

func goCmd(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
