package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reevehq/reeve/internal/runner"
)

// record is what the agent persists about a program it started, so that
// it can find the program again after a restart. It holds the run token
// (files are 0600 in a 0700 directory): an adopted program's output is
// shipped with it.
type record struct {
	FlowRunID string       `json:"flow_run_id"`
	Attempt   int          `json:"attempt"`
	Token     string       `json:"token"`
	Program   string       `json:"program"` // for messages: the program's path or image
	Handle    runner.Saved `json:"handle"`
}

// records keeps one file per running program in a directory, each written
// whole or not at all.
type records struct{ dir string }

func (r records) path(runID string, attempt int) string {
	return filepath.Join(r.dir, fileName(runID)+"."+strconv.Itoa(attempt)+".json")
}

// fileName makes an ID usable as a file name.
func fileName(id string) string {
	return strings.Map(func(c rune) rune {
		if c == '/' || c == '\\' || c == 0 || c == '.' {
			return '_'
		}
		return c
	}, id)
}

// save writes rec atomically: a temporary file, synced, renamed over.
func (r records) save(rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(r.dir, ".record-*")
	if err != nil {
		return fmt.Errorf("save the record of flow run %s: %w", rec.FlowRunID, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), r.path(rec.FlowRunID, rec.Attempt))
	}
	if err == nil {
		err = syncDir(r.dir)
	}
	if err != nil {
		return fmt.Errorf("save the record of flow run %s: %w", rec.FlowRunID, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}

func (r records) remove(runID string, attempt int) error {
	err := os.Remove(r.path(runID, attempt))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the record of flow run %s: %w", runID, err)
	}
	return nil
}

// load reads every record. A file that cannot be read as a record is
// skipped and reported in bad.
func (r records) load() (recs []record, bad []error, err error) {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read the agent's records: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(r.dir, e.Name())
		data, err := os.ReadFile(p)
		var rec record
		if err == nil {
			err = json.Unmarshal(data, &rec)
		}
		if err == nil && rec.FlowRunID == "" {
			err = errors.New("no flow run ID")
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("record %s: %w", p, err))
			continue
		}
		recs = append(recs, rec)
	}
	return recs, bad, nil
}
