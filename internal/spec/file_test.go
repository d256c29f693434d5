package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteFileReadDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "flows", "nested") // WriteFile creates it
	etl := fullSpec()
	other := fullSpec()
	other.Name = "backfill"
	for _, s := range []*Spec{etl, other} {
		path, err := WriteFile(dir, s)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, s.Name+".json"); path != want {
			t.Errorf("WriteFile wrote %s, want %s", path, want)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := Encode(s); !bytes.Equal(data, want) {
			t.Errorf("%s holds\n%s\nwant what Encode writes:\n%s", path, data, want)
		}
	}
	// A file that is not a spec is left alone.
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# flows"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*Spec{other, etl}; !reflect.DeepEqual(got, want) { // by file name
		t.Errorf("ReadDir = %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"README.md", "backfill.json", "etl.json"}; !reflect.DeepEqual(names, want) {
		t.Errorf("directory holds %q, want %q (no temporary files left)", names, want)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := fullSpec()
	if _, err := WriteFile(dir, s); err != nil {
		t.Fatal(err)
	}
	s.Description = "changed"
	if _, err := WriteFile(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Description != "changed" {
		t.Errorf("ReadDir after a rewrite = %+v, want the changed spec alone", got)
	}
}

func TestWriteFileRejectsInvalidSpec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := fullSpec()
	s.Name = "../escape"
	if _, err := WriteFile(dir, s); err == nil || !strings.Contains(err.Error(), `name "../escape" is not valid`) {
		t.Errorf("WriteFile of a spec with a bad name: error = %v, want one about the name", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("WriteFile of an invalid spec left %d files", len(entries))
	}
}

func TestReadDirErrors(t *testing.T) {
	t.Parallel()
	valid, err := Encode(fullSpec())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // each must be in the error; "DIR" stands for the directory
	}{
		{"empty directory", nil, []string{"no flow specs in DIR: it has no *.json files"}},
		{"only other files", map[string]string{"notes.txt": "x"}, []string{"no flow specs in DIR"}},
		{"a bad file among good ones", map[string]string{
			"a.json": string(valid),
			"b.json": `{"spec_version":1,"name":"b","tasks":[{"id":"x","task":"x","after":["y"],"options":{"retries":-1}}]}`,
		}, []string{
			`DIR/b.json: spec "b": task "x": after: unknown task "y"`,
			`DIR/b.json: spec "b": task "x": options: retries is -1`,
		}},
		{"two bad files", map[string]string{"a.json": `{`, "c.json": `{"spec_version":7}`}, []string{
			"DIR/a.json: spec: invalid JSON",
			"DIR/c.json: spec was written by a newer Reeve",
		}},
		{"the same flow twice", map[string]string{"a.json": string(valid), "b.json": string(valid)}, []string{
			`DIR/b.json: spec "etl" is also in DIR/a.json`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			specs, err := ReadDir(dir)
			if err == nil {
				t.Fatalf("ReadDir = %+v, want an error", specs)
			}
			for _, want := range tc.want {
				want = strings.ReplaceAll(want, "DIR", dir)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("ReadDir error =\n%v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

func TestReadDirMissing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := ReadDir(dir)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), dir) {
		t.Errorf("ReadDir of a missing directory: error = %v, want one naming it that matches os.ErrNotExist", err)
	}
}
