package layers_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestEverySettingIsInTheReadme fails when a setting (an `env:"NAME"` tag
// on a field of any configuration struct in the module) has no row in
// README.md's configuration table, and when the table names a variable
// that the code never reads.
func TestEverySettingIsInTheReadme(t *testing.T) {
	root := moduleRoot(t)
	settings, literals := goSettings(t, root)
	if len(settings) < 20 {
		t.Fatalf("found %d env tags; the check would prove nothing", len(settings))
	}
	documented := readmeSettings(t, root)
	for name, where := range settings {
		if !documented[name] {
			t.Errorf("setting %s (%s) is not in README.md's configuration table: add a row | `%s` | default | what it does |", name, where, name)
		}
	}
	for name := range documented {
		if settings[name] == "" && !literals[name] {
			t.Errorf("README.md's configuration table names %s, which no configuration struct or code reads: remove the row or fix the name", name)
		}
	}
}

// goSettings returns the env tags of every struct field in the module's
// non-test Go files (name → file:line), and every string literal that looks
// like a variable name (variables read with os.Getenv).
func goSettings(t *testing.T, root string) (map[string]string, map[string]bool) {
	t.Helper()
	settings, literals := map[string]string{}, map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if n.Tag == nil {
					return true
				}
				tag, err := strconv.Unquote(n.Tag.Value)
				if err != nil {
					return true
				}
				if name, _, _ := strings.Cut(reflect.StructTag(tag).Get("env"), ","); name != "" {
					rel, _ := filepath.Rel(root, fset.Position(n.Pos()).Filename)
					settings[name] = rel + ":" + strconv.Itoa(fset.Position(n.Pos()).Line)
				}
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && varName.MatchString(s) {
					literals[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return settings, literals
}

var varName = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// readmeSettings returns the variables named in the first cell of the rows
// of README.md's "## Configuration" section's table.
func readmeSettings(t *testing.T, root string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Configuration\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	names := map[string]bool{}
	code := regexp.MustCompile("`([^`]+)`")
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 3 {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			if varName.MatchString(m[1]) {
				names[m[1]] = true
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("README.md's configuration section has no table of variables")
	}
	return names
}
