package spec

import (
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// hashMutations change one field of fullSpec each. TestHashCoversEveryField
// checks that every field has at least one; the name before any " (" is the
// field's path.
var hashMutations = []struct {
	field  string
	mutate func(*Spec)
}{
	{"SpecVersion", func(s *Spec) { s.SpecVersion = 2 }},
	{"Name", func(s *Spec) { s.Name = "etl2" }},
	{"Description", func(s *Spec) { s.Description = "" }},
	{"Labels", func(s *Spec) { s.Labels = []string{"gpu"} }},
	{"Labels (order)", func(s *Spec) { s.Labels = []string{"linux", "gpu"} }},
	{"Parameters.Name", func(s *Spec) { s.Parameters[0].Name = "day" }},
	{"Parameters.Type", func(s *Spec) { s.Parameters[1].Type = "array" }},
	{"Parameters.GoType", func(s *Spec) { s.Parameters[1].GoType = "map[string]any" }},
	{"Parameters.Required", func(s *Spec) { s.Parameters[0].Required = false }},
	{"Parameters.Default", func(s *Spec) { s.Parameters[1].Default = json.RawMessage(`{"a":1,"b":[3,2]}`) }},
	{"Parameters.Default (number literal)", func(s *Spec) { s.Parameters[1].Default = json.RawMessage(`{"a":1.0,"b":[2,3]}`) }},
	{"Parameters.Default (large integer)", func(s *Spec) {
		s.Parameters[1].Default = json.RawMessage(`{"a":9007199254740993,"b":[2,3]}`)
	}},
	{"Parameters (order)", func(s *Spec) { s.Parameters[0], s.Parameters[1] = s.Parameters[1], s.Parameters[0] }},
	{"Tasks.ID", func(s *Spec) { s.Tasks[2].ID = "store" }},
	{"Tasks.Task", func(s *Spec) { s.Tasks[2].Task = "store" }},
	{"Tasks.Mapped", func(s *Spec) { s.Tasks[1].Mapped = false }},
	{"Tasks.Inputs.Kind", func(s *Spec) { s.Tasks[0].Inputs[0].Kind = InputTask }},
	{"Tasks.Inputs.Task", func(s *Spec) { s.Tasks[2].Inputs[0].Task = "extract" }},
	{"Tasks.Inputs.Param", func(s *Spec) { s.Tasks[2].Inputs[1].Param = "date" }},
	{"Tasks.Inputs.Value", func(s *Spec) { s.Tasks[1].Inputs[1].Value = json.RawMessage(`{"upper":false}`) }},
	{"Tasks.Inputs.Each", func(s *Spec) { s.Tasks[1].Inputs[1].Each = true }},
	{"Tasks.Inputs (order)", func(s *Spec) {
		s.Tasks[2].Inputs[0], s.Tasks[2].Inputs[1] = s.Tasks[2].Inputs[1], s.Tasks[2].Inputs[0]
	}},
	{"Tasks.After", func(s *Spec) { s.Tasks[2].After = nil }},
	{"Tasks.Options.Retries", func(s *Spec) { s.Tasks[0].Options.Retries = 4 }},
	{"Tasks.Options.RetryDelay", func(s *Spec) { s.Tasks[0].Options.RetryDelay = Duration(time.Second) }},
	{"Tasks.Options.Backoff", func(s *Spec) { s.Tasks[0].Options.Backoff = 2.5 }},
	{"Tasks.Options.MaxRetryDelay", func(s *Spec) { s.Tasks[0].Options.MaxRetryDelay = 0 }},
	{"Tasks.Options.Timeout", func(s *Spec) { s.Tasks[0].Options.Timeout = Duration(time.Hour + time.Nanosecond) }},
	{"Tasks.Options.Trigger", func(s *Spec) { s.Tasks[0].Options.Trigger = "any_failed" }},
	{"Tasks.Options.SkipOnUpstreamSkip", func(s *Spec) { skip := true; s.Tasks[0].Options.SkipOnUpstreamSkip = &skip }},
	{"Tasks.Options.SkipOnUpstreamSkip (unset)", func(s *Spec) { s.Tasks[0].Options.SkipOnUpstreamSkip = nil }},
	{"Tasks.Options.CacheFor", func(s *Spec) { s.Tasks[0].Options.CacheFor = Duration(time.Hour) }},
	{"Tasks.Options.Checkpoint", func(s *Spec) { s.Tasks[0].Options.Checkpoint = false }},
	{"Tasks.Options.NoCheckpoint", func(s *Spec) { s.Tasks[1].Options.NoCheckpoint = false }},
	{"Tasks.Options.ResultStore", func(s *Spec) { s.Tasks[0].Options.ResultStore = "s3://bucket/other" }},
	{"Tasks.Options.Serializer", func(s *Spec) { s.Tasks[0].Options.Serializer = "json" }},
	{"Tasks.Options.Tags", func(s *Spec) { s.Tasks[0].Options.Tags = []string{"io"} }},
	{"Tasks.Options (moved to another task)", func(s *Spec) {
		s.Tasks[1].Options, s.Tasks[0].Options = s.Tasks[0].Options, Options{}
	}},
	{"Tasks (order)", func(s *Spec) { s.Tasks[1], s.Tasks[2] = s.Tasks[2], s.Tasks[1] }},
	{"ReferenceTasks", func(s *Spec) { s.ReferenceTasks = []string{"transform"} }},
	{"ResultStore", func(s *Spec) { s.ResultStore = "" }},
	{"Secrets.Name", func(s *Spec) { s.Secrets[0].Name = "DB_PASS" }},
	{"Env.Name", func(s *Spec) { s.Env[0].Name = "USER" }},
	{"Env.FromAgent", func(s *Spec) { s.Env[0].FromAgent = true }},
	{"Schedule.Cron", func(s *Spec) { s.Schedule.Cron = "@hourly" }},
	{"Schedule.Timezone", func(s *Spec) { s.Schedule.Timezone = "" }},
	{"Schedule (unset)", func(s *Spec) { s.Schedule = nil }},
}

func TestHashCoversEveryField(t *testing.T) {
	t.Parallel()
	covered := make(map[string]bool)
	for _, m := range hashMutations {
		field, _, _ := strings.Cut(m.field, " (")
		covered[field] = true
	}
	for _, f := range leafFields(reflect.TypeFor[Spec](), "") {
		if !covered[f] {
			t.Errorf("hashMutations has no mutation of %s: add one", f)
		}
	}
}

func TestHashChangesWithEveryField(t *testing.T) {
	t.Parallel()
	base := fullSpec().Hash()
	seen := map[string]string{base: "the unchanged spec"}
	for _, m := range hashMutations {
		s := fullSpec()
		m.mutate(s)
		h := s.Hash()
		if other, dup := seen[h]; dup {
			t.Errorf("changing %s gives the same hash as %s", m.field, other)
		}
		seen[h] = m.field
	}
}

func TestHashForm(t *testing.T) {
	t.Parallel()
	h := fullSpec().Hash()
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(h) {
		t.Errorf("Hash() = %q, want sha256: and 64 hex digits", h)
	}
	if again := fullSpec().Hash(); again != h {
		t.Errorf("Hash() of equal specs differ: %s, %s", h, again)
	}
}

// TestHashEquivalentSpecs: specs that mean the same hash the same.
func TestHashEquivalentSpecs(t *testing.T) {
	t.Parallel()
	unchanged := func(*Spec) {}
	for _, tc := range []struct {
		name string
		a, b func(*Spec)
	}{
		{"zero spec_version means Version", unchanged, func(s *Spec) { s.SpecVersion = 0 }},
		{"empty labels are absent labels", func(s *Spec) { s.Labels = nil }, func(s *Spec) { s.Labels = []string{} }},
		{"empty tasks are absent tasks", func(s *Spec) { s.Tasks = nil }, func(s *Spec) { s.Tasks = []Task{} }},
		{"default keys in another order, with space", unchanged, func(s *Spec) {
			s.Parameters[1].Default = json.RawMessage(` { "b" : [2, 3], "a" : 1 } `)
		}},
		{"const value with space", unchanged, func(s *Spec) { s.Tasks[1].Inputs[1].Value = json.RawMessage("{\n\"upper\": true}") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := fullSpec(), fullSpec()
			tc.a(a)
			tc.b(b)
			if a.Hash() != b.Hash() {
				t.Errorf("hashes differ: %s and %s", a.Hash(), b.Hash())
			}
		})
	}
}

func TestHashOfUnencodableSpec(t *testing.T) {
	t.Parallel()
	s := fullSpec()
	s.Tasks[0].Options.Backoff = math.NaN()
	if s.Hash() != s.Hash() || !strings.HasPrefix(s.Hash(), "sha256:") {
		t.Errorf("Hash of a spec with a NaN backoff is not stable: %s", s.Hash())
	}
	if s.Hash() == fullSpec().Hash() {
		t.Errorf("a NaN backoff hashes like a valid spec")
	}
}
