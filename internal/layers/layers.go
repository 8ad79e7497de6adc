// Package layers enforces the layer table of ARCHITECTURE.md: the one place
// that says which package may import what. The table is an allow-list:
// every package of the module must have a row, and every import that its
// row does not allow is a violation. The check is a function over an import
// graph, so that its tests can plant violations; the repository's own test
// feeds it the graph `go list` reports.
//
// The grammar of the table is documented in ARCHITECTURE.md under "How the
// table is read"; Parse refuses anything else, so that a cell that does not
// mean what its author thought cannot pass silently.
package layers

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Rules are the rows of the layer table and the names its cells may use.
type Rules struct {
	module string
	rows   []row
	names  map[string][]string // name → patterns, already resolved
}

// row is one line of the layer table.
type row struct {
	line      int
	pattern   string   // as written: "internal/domain", "internal/adapters/llm/*"
	allow     []string // resolved patterns, "!" for exclusions
	testAllow []string // what the package's tests may import besides allow
}

// Package is one package of the import graph: its import path and its
// direct imports, those of its production files and those of its tests.
type Package struct {
	Path        string
	Imports     []string
	TestImports []string // of _test.go files, both in-package and external
}

// Violation is one import the table does not allow, or one package without
// a row.
type Violation struct {
	Package string // import path, relative to the module
	Import  string // import path, relative to the module; "" for a missing row
	Test    bool   // the import is made by a test file
	Row     string // the row that applied; "" for a missing row
	Line    int    // that row's line in ARCHITECTURE.md
	Allowed string // the row's allow-list as written, for the message
	Has     string // for a missing row: the package's imports now, as a may-import cell
}

// Error says what is wrong and what to do about it, for an engineer who has
// never read this package.
func (v Violation) Error() string {
	if v.Import == "" {
		return fmt.Sprintf("package %s has no row in ARCHITECTURE.md's layer table. "+
			"Add one under \"## The layers\", such as | `%s` | what it holds | %s | — |, "+
			"listing what the package imports now (third-party modules by a name of the names table below it, or a full path ending in /...); "+
			"every package is checked against its row", v.Package, v.Package, v.Has)
	}
	who := "imports"
	if v.Test {
		who = "has a test that imports"
	}
	return fmt.Sprintf("%s %s %s, which ARCHITECTURE.md's layer table does not allow "+
		"(row `%s` on line %d allows: %s). Remove the import (depend on a port, or take the value as a parameter and let cmd/app wire it), "+
		"or, if the architecture should change, add it to that row (or to the row's test column for a test-only import) and say why in the commit",
		v.Package, who, v.Import, v.Row, v.Line, v.Allowed)
}

// stdPattern stands for every standard library package.
const stdPattern = "std"

// everything stands for every package.
const everything = "everything"

// Parse reads the layer table (header "| package | holds | may import |",
// optionally followed by "its tests may also import |") and the names table
// (header "| name | stands for |") from markdown. Internal paths are written
// relative to module ("internal/domain"). Every problem is reported, one per
// line.
func Parse(markdown, module string) (*Rules, error) {
	r := &Rules{module: module, names: map[string][]string{}}
	var errs []error
	type rawRow struct {
		line         int
		cells        []string
		layer, names bool
	}
	var raws []rawRow
	table := ""
	sc := bufio.NewScanner(strings.NewReader(markdown))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			table = ""
			continue
		}
		cells := splitRow(line)
		switch {
		case len(cells) >= 3 && cells[0] == "package" && cells[1] == "holds" && cells[2] == "may import":
			table = "layer"
			continue
		case len(cells) == 2 && cells[0] == "name" && cells[1] == "stands for":
			table = "names"
			continue
		case strings.Trim(line, "|-: ") == "":
			continue
		}
		if table != "" {
			raws = append(raws, rawRow{line: n, cells: cells, layer: table == "layer", names: table == "names"})
		}
	}
	// Names first, so that rows may use names defined below them.
	for _, raw := range raws {
		if !raw.names {
			continue
		}
		name := strings.Trim(raw.cells[0], "`")
		if name == stdPattern || name == everything {
			continue // built in; the row only explains it
		}
		pats, err := r.items(raw.cells[1], nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: name %s: %w", raw.line, name, err))
			continue
		}
		if _, dup := r.names[name]; dup {
			errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: name %s is defined twice", raw.line, name))
		}
		r.names[name] = pats
	}
	seen := map[string]int{}
	for _, raw := range raws {
		if !raw.layer {
			continue
		}
		if len(raw.cells) < 3 || len(raw.cells) > 4 {
			errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: a layer row has 3 or 4 cells (package | holds | may import | its tests may also import), not %d", raw.line, len(raw.cells)))
			continue
		}
		pkg := strings.TrimSuffix(strings.TrimPrefix(raw.cells[0], "`"), "`")
		if pkg == "" || strings.ContainsAny(pkg, "` ") {
			errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: the package cell must be one path in backticks, such as `internal/domain`, not %q", raw.line, raw.cells[0]))
			continue
		}
		if first, dup := seen[pkg]; dup {
			errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: package %s has a row on line %d already", raw.line, pkg, first))
			continue
		}
		seen[pkg] = raw.line
		rw := row{line: raw.line, pattern: pkg}
		var err error
		if rw.allow, err = r.items(raw.cells[2], r.names); err != nil {
			errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: %s may import: %w", raw.line, pkg, err))
		}
		if len(raw.cells) == 4 {
			if rw.testAllow, err = r.items(raw.cells[3], r.names); err != nil {
				errs = append(errs, fmt.Errorf("ARCHITECTURE.md line %d: %s's tests may also import: %w", raw.line, pkg, err))
			}
		}
		r.rows = append(r.rows, rw)
	}
	if len(r.rows) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("ARCHITECTURE.md has no layer table (a table whose header is | package | holds | may import |)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// splitRow returns the trimmed cells of a markdown table row.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// items parses a cell: comma-separated items, each one path pattern or name
// in backticks, an exclusion being prefixed with "!" inside the backticks;
// "—" or an empty cell is nothing. Names are expanded when names is non-nil.
func (r *Rules) items(cell string, names map[string][]string) ([]string, error) {
	if cell == "" || cell == "—" || cell == "-" {
		return nil, nil
	}
	var out []string
	var errs []error
	for item := range strings.SplitSeq(cell, ",") {
		item = strings.TrimSpace(item)
		if len(item) < 3 || item[0] != '`' || item[len(item)-1] != '`' || strings.Count(item, "`") != 2 {
			errs = append(errs, fmt.Errorf("%q is not one name or path in backticks (items are separated by commas; prose belongs in the holds column)", item))
			continue
		}
		item = item[1 : len(item)-1]
		not := strings.HasPrefix(item, "!")
		item = strings.TrimPrefix(item, "!")
		var pats []string
		if expanded, ok := names[item]; ok {
			pats = expanded
		} else if names != nil && !strings.Contains(item, "/") && !strings.Contains(item, ".") && item != stdPattern && item != everything {
			errs = append(errs, fmt.Errorf("%q is neither a path nor a name of the names table", item))
			continue
		} else {
			pats = []string{r.resolve(item)}
		}
		for _, p := range pats {
			if not {
				p = "!" + strings.TrimPrefix(p, "!")
			}
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// resolve turns a module-relative path into a full import path.
func (r *Rules) resolve(p string) string {
	if p == "internal" || strings.HasPrefix(p, "internal/") || strings.HasPrefix(p, "cmd/") || p == "integration" {
		return r.module + "/" + p
	}
	return p
}

// relative turns a full import path into a module-relative one.
func (r *Rules) relative(p string) string {
	if rest, ok := strings.CutPrefix(p, r.module+"/"); ok {
		return rest
	}
	return p
}

// rowFor returns the row of a package: an exact row wins over a wildcard
// ("dir/*" matches dir's direct subpackages, "dir/..." dir and everything
// below it), and a longer wildcard over a shorter one.
func (r *Rules) rowFor(pkg string) (row, bool) {
	rel := r.relative(pkg)
	best, bestLen, found := row{}, -1, false
	for _, rw := range r.rows {
		p := rw.pattern
		switch {
		case p == rel:
			return rw, true
		case strings.HasSuffix(p, "/*"):
			dir := strings.TrimSuffix(p, "*")
			rest, ok := strings.CutPrefix(rel, dir)
			if ok && rest != "" && !strings.Contains(rest, "/") && len(dir) > bestLen {
				best, bestLen, found = rw, len(dir), true
			}
		case strings.HasSuffix(p, "/..."):
			dir := strings.TrimSuffix(p, "/...")
			if (rel == dir || strings.HasPrefix(rel, dir+"/")) && len(dir) > bestLen {
				best, bestLen, found = rw, len(dir), true
			}
		}
	}
	return best, found
}

// isStd reports whether path names a standard library package: its first
// element has no dot, as the go command decides for modules.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// matches reports whether path is matched by one pattern.
func (r *Rules) matches(pattern, path string) bool {
	switch {
	case pattern == everything:
		return true
	case pattern == stdPattern:
		return isStd(path) && !strings.HasPrefix(path, r.module+"/")
	case strings.HasSuffix(pattern, "/..."):
		dir := strings.TrimSuffix(pattern, "/...")
		return path == dir || strings.HasPrefix(path, dir+"/")
	default:
		return path == pattern
	}
}

// allowed reports whether the patterns allow path: one of them matches it
// and no exclusion does.
func (r *Rules) allowed(patterns []string, path string) bool {
	ok := false
	for _, p := range patterns {
		if not, isNot := strings.CutPrefix(p, "!"); isNot {
			if r.matches(not, path) {
				return false
			}
			continue
		}
		ok = ok || r.matches(p, path)
	}
	return ok
}

// Check returns every violation of the rules in pkgs, sorted by package
// and import. A package may always import itself (an external test
// package does).
func (r *Rules) Check(pkgs []Package) []Violation {
	var out []Violation
	for _, p := range pkgs {
		rw, ok := r.rowFor(p.Path)
		if !ok {
			out = append(out, Violation{Package: r.relative(p.Path), Has: r.cell(p.Imports)})
			continue
		}
		both := append(slices.Clone(rw.allow), rw.testAllow...)
		check := func(imports []string, test bool, patterns []string) {
			for _, imp := range imports {
				if imp == p.Path || imp == "C" || r.allowed(patterns, imp) {
					continue
				}
				out = append(out, Violation{Package: r.relative(p.Path), Import: r.relative(imp), Test: test,
					Row: rw.pattern, Line: rw.line, Allowed: r.describe(rw)})
			}
		}
		check(p.Imports, false, rw.allow)
		check(p.TestImports, true, both)
	}
	slices.SortFunc(out, func(a, b Violation) int {
		return strings.Compare(a.Package+" "+a.Import, b.Package+" "+b.Import)
	})
	return slices.CompactFunc(out, func(a, b Violation) bool { return a.Package == b.Package && a.Import == b.Import })
}

// cell writes imports as a may-import cell: `std` for the standard
// library, then each other import.
func (r *Rules) cell(imports []string) string {
	items := []string{"`std`"}
	for _, imp := range imports {
		if !isStd(imp) || strings.HasPrefix(imp, r.module+"/") {
			items = append(items, "`"+r.relative(imp)+"`")
		}
	}
	return strings.Join(items, ", ")
}

// describe lists a row's allow-list, for messages.
func (r *Rules) describe(rw row) string {
	rel := func(ps []string) string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = r.relative(strings.TrimPrefix(p, "!"))
			if strings.HasPrefix(p, "!") {
				out[i] = "not " + out[i]
			}
		}
		if len(out) == 0 {
			return "nothing"
		}
		return strings.Join(out, ", ")
	}
	if len(rw.testAllow) == 0 {
		return rel(rw.allow)
	}
	return rel(rw.allow) + "; its tests also " + rel(rw.testAllow)
}
