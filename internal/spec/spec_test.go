package spec

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	_ "time/tzdata" // the tests use IANA time zones whatever the machine has
)

// fullSpec returns a valid spec in which every field, including every task
// option, is set somewhere. TestFullSpecSetsEveryField keeps it so.
func fullSpec() *Spec {
	skip := false
	return &Spec{
		SpecVersion: Version,
		Name:        "etl",
		Description: "Extract, transform, load.",
		Labels:      []string{"gpu", "linux"},
		Parameters: []Parameter{
			{Name: "date", Type: "string", GoType: "string", Required: true},
			{Name: "limits", Type: "object", GoType: "map[string][]int", Default: json.RawMessage(`{"a":1,"b":[2,3]}`)},
		},
		Tasks: []Task{
			{
				ID:     "extract",
				Task:   "extract",
				Inputs: []Input{{Kind: InputParam, Param: "date"}},
				Options: Options{
					Retries:            3,
					RetryDelay:         Duration(1500 * time.Millisecond),
					Backoff:            2,
					MaxRetryDelay:      Duration(time.Minute),
					Timeout:            Duration(time.Hour),
					Trigger:            "all_finished",
					SkipOnUpstreamSkip: &skip,
					CacheFor:           Duration(24 * time.Hour),
					Checkpoint:         true,
					ResultStore:        "s3://bucket/results",
					Serializer:         "gob",
					Tags:               []string{"io", "slow"},
				},
			},
			{
				ID:      "transform",
				Task:    "transform",
				Mapped:  true,
				Options: Options{NoCheckpoint: true},
				Inputs: []Input{
					{Kind: InputTask, Task: "extract", Each: true},
					{Kind: InputConst, Value: json.RawMessage(`{"upper":true}`)},
				},
			},
			{
				ID:     "load",
				Task:   "load",
				Inputs: []Input{{Kind: InputTask, Task: "transform"}, {Kind: InputParam, Param: "limits"}},
				After:  []string{"extract"},
			},
		},
		ReferenceTasks: []string{"load"},
		ResultStore:    "file:///var/lib/reeve/results",
		Secrets:        []Secret{{Name: "DB_PASSWORD"}},
		Env:            []EnvVar{{Name: "HOME"}, {Name: "AWS_REGION", FromAgent: true}},
		Schedule:       &Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
	}
}

// leafFields returns the paths, like "Tasks.Options.Retries", of the fields
// of t that hold values rather than further structs.
func leafFields(t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct) {
		if t.Elem().Kind() != reflect.Struct {
			break // *bool is a value
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return []string{path}
	}
	var paths []string
	for i := range t.NumField() {
		paths = append(paths, leafFields(t.Field(i).Type, joinPath(path, t.Field(i).Name))...)
	}
	return paths
}

// markSet adds to set the path of every leaf field that is not zero in v,
// in any element of its lists.
func markSet(v reflect.Value, path string, set map[string]bool) {
	switch {
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		if !v.IsNil() {
			markSet(v.Elem(), path, set)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		for i := range v.Len() {
			markSet(v.Index(i), path, set)
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			markSet(v.Field(i), joinPath(path, v.Type().Field(i).Name), set)
		}
	default:
		if !v.IsZero() {
			set[path] = true
		}
	}
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func TestFullSpecSetsEveryField(t *testing.T) {
	t.Parallel()
	set := make(map[string]bool)
	markSet(reflect.ValueOf(fullSpec()).Elem(), "", set)
	for _, f := range leafFields(reflect.TypeFor[Spec](), "") {
		if !set[f] {
			t.Errorf("fullSpec leaves %s unset: set it, so that the round-trip and hash tests cover it", f)
		}
	}
	if err := fullSpec().Validate(); err != nil {
		t.Fatalf("fullSpec is not valid: %v", err)
	}
}

func TestTaskByID(t *testing.T) {
	t.Parallel()
	s := fullSpec()
	for _, id := range []string{"extract", "transform", "load"} {
		got := s.TaskByID(id)
		if got == nil || got.ID != id {
			t.Errorf("TaskByID(%q) = %v, want the task %q", id, got, id)
		}
	}
	if got := s.TaskByID("nope"); got != nil {
		t.Errorf("TaskByID(%q) = %v, want nil", "nope", got)
	}
	s.TaskByID("load").Task = "load-v2"
	if s.Tasks[2].Task != "load-v2" {
		t.Errorf("TaskByID returned a copy; want a pointer into Tasks")
	}
}

func TestTaskNames(t *testing.T) {
	t.Parallel()
	s := fullSpec()
	s.Tasks = append(s.Tasks, Task{ID: "load-2", Task: "load"}, Task{ID: "audit", Task: "audit"})
	want := []string{"audit", "extract", "load", "transform"}
	if got := s.TaskNames(); !slices.Equal(got, want) {
		t.Errorf("TaskNames() = %q, want %q", got, want)
	}
}
