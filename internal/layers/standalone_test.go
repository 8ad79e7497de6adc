package layers_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cited matches citations of documents that are not in the repository:
// background material the project was started from. Their rationale lives
// in docs/DESIGN-NOTES.md, which is what the code and the docs cite.
var cited = regexp.MustCompile(`(?i)\bDESIGN\.md|\breference/[a-z-]+\.md|\bshared/(reference|seed|mlflow)\b|\bthe seed\b|\bseed's\b|\bseed document`)

// TestRepositoryStandsAlone fails when a file cites a document outside the
// repository.
func TestRepositoryStandsAlone(t *testing.T) {
	root := moduleRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") && d.Name() != ".ci" || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil || strings.ContainsRune(string(data[:min(len(data), 512)]), 0) {
			return err // binary files cite nothing
		}
		for i, line := range strings.Split(string(data), "\n") {
			if m := cited.FindString(line); m != "" {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d cites %q, a document outside the repository: cite docs/DESIGN-NOTES.md (and carry the rationale there) instead", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
