package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile validates s and writes it, encoded by Encode, to the file
// <dir>/<name>.json, creating dir if needed, and returns the file's path.
// The file is replaced atomically: a reader sees the old spec or the new
// one, never a part of one.
func WriteFile(dir string, s *Spec) (path string, err error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	data, err := Encode(s)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%s: write: %w", specLabel(s.Name), err)
	}
	path = filepath.Join(dir, s.Name+".json")
	tmp, err := os.CreateTemp(dir, "."+s.Name+".json.tmp-*")
	if err != nil {
		return "", fmt.Errorf("%s: write: %w", specLabel(s.Name), err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("%s: write %s: %w", specLabel(s.Name), path, err)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// ReadDir reads every *.json file in dir, in file name order, and decodes
// each with Decode. It reports the problems of every file, each prefixed
// with the file's path; two files that hold flows of the same name are an
// error too. A directory without any spec file is an error that says so.
func ReadDir(dir string) ([]*Spec, error) {
	entries, err := os.ReadDir(dir) // sorted by file name
	if err != nil {
		return nil, fmt.Errorf("read flow specs: %w", err)
	}
	var (
		specs []*Spec
		errs  []error
		files = make(map[string]string) // flow name → file path
	)
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read flow spec: %w", err))
			continue
		}
		s, err := Decode(data)
		if err != nil {
			errs = append(errs, inFile(path, err))
			continue
		}
		if other, dup := files[s.Name]; dup {
			errs = append(errs, invalidf("%s: %s is also in %s: keep one of the two files", path, specLabel(s.Name), other))
			continue
		}
		files[s.Name] = path
		specs = append(specs, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("no flow specs in %s: it has no *.json files", dir)
	}
	return specs, nil
}

// inFile prefixes with path each problem of err, which may be joined.
func inFile(path string, err error) error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s: %w", path, err)
	}
	errs := joined.Unwrap()
	wrapped := make([]error, len(errs))
	for i, e := range errs {
		wrapped[i] = fmt.Errorf("%s: %w", path, e)
	}
	return errors.Join(wrapped...)
}
