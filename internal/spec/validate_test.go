package spec

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*Spec)
		want   string // a line of the error, or a part of one
	}{
		// The flow.
		{"empty name", func(s *Spec) { s.Name = "" }, `spec: name is empty: set it`},
		{"name with a space", func(s *Spec) { s.Name = "my flow" }, `spec "my flow": name "my flow" is not valid: use letters, digits`},
		{"name starting with a dot", func(s *Spec) { s.Name = ".etl" }, `name ".etl" is not valid`},
		{"name with a slash", func(s *Spec) { s.Name = "a/b" }, `name "a/b" is not valid`},
		{"future spec_version", func(s *Spec) { s.SpecVersion = Version + 1 }, `spec "etl": spec_version 2 is not valid`},
		{"empty label", func(s *Spec) { s.Labels = []string{"gpu", ""} }, `spec "etl": labels[1] is empty: remove it`},
		{"repeated label", func(s *Spec) { s.Labels = []string{"gpu", "gpu"} }, `spec "etl": label "gpu" is listed twice`},

		// Tasks.
		{"no tasks", func(s *Spec) { s.Tasks = nil; s.ReferenceTasks = nil }, `spec "etl": has no tasks: add at least one`},
		{"repeated task ID", func(s *Spec) { s.Tasks[2].ID = "extract" }, `spec "etl": task ID "extract" is used twice`},
		{"empty task ID", func(s *Spec) { s.Tasks[0].ID = "" }, `spec "etl": tasks[0]: id is empty`},
		{"empty task name", func(s *Spec) { s.Tasks[2].Task = "" }, `spec "etl": task "load": task is empty: set it to the name`},
		{"input of unknown kind", func(s *Spec) { s.Tasks[2].Inputs[0].Kind = "result" },
			`spec "etl": task "load": inputs[0]: kind "result" is not valid: use task, param or const`},
		{"input of no kind", func(s *Spec) { s.Tasks[2].Inputs[0].Kind = "" }, `task "load": inputs[0]: kind "" is not valid`},
		{"task input without task", func(s *Spec) { s.Tasks[2].Inputs[0].Task = "" },
			`task "load": inputs[0]: an input of kind task needs "task": set it`},
		{"task input with a param", func(s *Spec) { s.Tasks[2].Inputs[0].Param = "date" },
			`task "load": inputs[0]: an input of kind task takes no "param": remove it`},
		{"param input without param", func(s *Spec) { s.Tasks[2].Inputs[1].Param = "" },
			`task "load": inputs[1]: an input of kind param needs "param"`},
		{"param input with a value", func(s *Spec) { s.Tasks[2].Inputs[1].Value = json.RawMessage(`1`) },
			`task "load": inputs[1]: an input of kind param takes no "value"`},
		{"const input without value", func(s *Spec) { s.Tasks[1].Inputs[1].Value = nil },
			`task "transform": inputs[1]: an input of kind const needs "value"`},
		{"const input with a task", func(s *Spec) { s.Tasks[1].Inputs[1].Task = "extract" },
			`task "transform": inputs[1]: an input of kind const takes no "task"`},
		{"const input that is not JSON", func(s *Spec) { s.Tasks[1].Inputs[1].Value = json.RawMessage(`{upper}`) },
			`task "transform": inputs[1]: value is not valid JSON`},
		{"input from an unknown task", func(s *Spec) { s.Tasks[2].Inputs[0].Task = "transfrom" },
			`task "load": inputs[0]: unknown task "transfrom": use the ID of a task of this flow`},
		{"input from an unknown parameter", func(s *Spec) { s.Tasks[2].Inputs[1].Param = "limit" },
			`task "load": inputs[1]: unknown parameter "limit": declare it`},
		{"each on a task that is not mapped", func(s *Spec) { s.Tasks[2].Inputs[0].Each = true },
			`task "load": inputs[0]: each is set but the task is not mapped`},
		{"mapped task without each", func(s *Spec) { s.Tasks[1].Inputs[0].Each = false },
			`task "transform" is mapped but no input has each set`},
		{"after an unknown task", func(s *Spec) { s.Tasks[2].After = []string{"extrct"} },
			`task "load": after: unknown task "extrct"`},
		{"after itself", func(s *Spec) { s.Tasks[2].After = []string{"load"} }, `task "load": after lists the task itself: remove it`},
		{"empty after", func(s *Spec) { s.Tasks[2].After = []string{""} }, `task "load": after[0] is empty`},
		{"unknown reference task", func(s *Spec) { s.ReferenceTasks = []string{"lod"} },
			`spec "etl": reference_tasks: unknown task "lod"`},

		// Parameters.
		{"empty parameter name", func(s *Spec) { s.Parameters[0].Name = ""; s.Tasks[0].Inputs = nil },
			`spec "etl": parameters[0]: name is empty`},
		{"repeated parameter", func(s *Spec) { s.Parameters[1].Name = "date" }, `parameter "date" is declared twice`},
		{"unknown parameter type", func(s *Spec) { s.Parameters[0].Type = "str" },
			`parameter "date": type "str" is not valid: use one of string, integer, number, boolean, array, object`},
		{"required with a default", func(s *Spec) { s.Parameters[0].Default = json.RawMessage(`"2024-01-01"`) },
			`parameter "date" is required and has a default`},
		{"neither required nor with a default", func(s *Spec) { s.Parameters[1].Default = nil },
			`parameter "limits" has no default and is not required`},
		{"default that is not JSON", func(s *Spec) { s.Parameters[1].Default = json.RawMessage(`{a:1}`) },
			`parameter "limits": default is not valid JSON`},
		{"object default that is an array", func(s *Spec) { s.Parameters[1].Default = json.RawMessage(`[1]`) },
			`parameter "limits": default [1] is not of type object`},
		{"integer default with a fraction", func(s *Spec) { setDefault(s, "integer", `1.5`) }, `default 1.5 is not of type integer`},
		{"integer default with an exponent", func(s *Spec) { setDefault(s, "integer", `1e3`) }, `default 1e3 is not of type integer`},
		{"integer default that is a string", func(s *Spec) { setDefault(s, "integer", `"1"`) }, `default "1" is not of type integer`},
		{"number default that is a string", func(s *Spec) { setDefault(s, "number", `"1.5"`) }, `is not of type number`},
		{"string default that is a number", func(s *Spec) { setDefault(s, "string", `1`) }, `default 1 is not of type string`},
		{"unknown parameter type", func(s *Spec) { setDefault(s, "text", `"x"`) }, `type "text" is not valid`},
		{"boolean default that is a string", func(s *Spec) { setDefault(s, "boolean", `"true"`) }, `is not of type boolean`},
		{"array default that is an object", func(s *Spec) { setDefault(s, "array", `{}`) }, `default {} is not of type array`},
		{"long default is shortened", func(s *Spec) { setDefault(s, "string", "["+strings.Repeat("1,", 50)+"1]") },
			`default [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1…`},

		// Secrets and environment variables.
		{"empty secret name", func(s *Spec) { s.Secrets = append(s.Secrets, Secret{}) }, `spec "etl": secrets[1]: name is empty`},
		{"secret name with a dash", func(s *Spec) { s.Secrets[0].Name = "db-password" }, `secret "db-password": name is not valid`},
		{"secret name with a leading digit", func(s *Spec) { s.Secrets[0].Name = "1PASSWORD" }, `secret "1PASSWORD": name is not valid`},
		{"repeated secret", func(s *Spec) { s.Secrets = append(s.Secrets, s.Secrets[0]) }, `secret "DB_PASSWORD" is declared twice`},
		{"empty env name", func(s *Spec) { s.Env[1].Name = "" }, `spec "etl": env[1]: name is empty`},
		{"env name with a space", func(s *Spec) { s.Env[0].Name = "MY HOME" }, `environment variable "MY HOME": name is not valid`},
		{"repeated env", func(s *Spec) { s.Env[1].Name = "HOME" }, `environment variable "HOME" is declared twice`},

		// Options.
		{"negative retries", func(s *Spec) { s.Tasks[0].Options.Retries = -1 },
			`spec "etl": task "extract": options: retries is -1: it cannot be negative`},
		{"negative retry delay", func(s *Spec) { s.Tasks[0].Options.RetryDelay = Duration(-time.Second) },
			`task "extract": options: retry_delay is -1s: it cannot be negative`},
		{"negative max retry delay", func(s *Spec) { s.Tasks[0].Options.MaxRetryDelay = -1 },
			`task "extract": options: max_retry_delay is -1ns: it cannot be negative`},
		{"negative timeout", func(s *Spec) { s.Tasks[1].Options.Timeout = Duration(-time.Minute) },
			`task "transform": options: timeout is -1m0s: it cannot be negative`},
		{"negative cache_for", func(s *Spec) { s.Tasks[0].Options.CacheFor = Duration(-time.Hour) },
			`task "extract": options: cache_for is -1h0m0s: it cannot be negative`},
		{"negative backoff", func(s *Spec) { s.Tasks[0].Options.Backoff = -2 }, `task "extract": options: backoff is -2:`},
		{"NaN backoff", func(s *Spec) { s.Tasks[0].Options.Backoff = math.NaN() }, `options: backoff is NaN`},
		{"infinite backoff", func(s *Spec) { s.Tasks[0].Options.Backoff = math.Inf(1) }, `options: backoff is +Inf`},
		{"empty tag", func(s *Spec) { s.Tasks[0].Options.Tags = []string{""} }, `task "extract": options: tags[0] is empty`},
		{"repeated tag", func(s *Spec) { s.Tasks[0].Options.Tags = []string{"io", "io"} },
			`task "extract": options: tag "io" is listed twice`},

		// Schedule.
		{"empty cron", func(s *Spec) { s.Schedule.Cron = "" }, `spec "etl": schedule: cron is empty`},
		{"cron in words", func(s *Spec) { s.Schedule.Cron = "every day" }, `spec "etl": schedule: cron "every day" is not valid`},
		{"cron out of range", func(s *Spec) { s.Schedule.Cron = "61 * * * *" }, `schedule: cron "61 * * * *" is not valid`},
		{"cron with too few fields", func(s *Spec) { s.Schedule.Cron = "* * *" }, `schedule: cron "* * *" is not valid`},
		{"cron with a zero step", func(s *Spec) { s.Schedule.Cron = "*/0 * * * *" }, `schedule: cron "*/0 * * * *" is not valid`},
		{"unknown descriptor", func(s *Spec) { s.Schedule.Cron = "@fortnightly" }, `schedule: cron "@fortnightly" is not valid`},
		{"unknown timezone", func(s *Spec) { s.Schedule.Timezone = "Mars/Olympus_Mons" },
			`spec "etl": schedule: timezone "Mars/Olympus_Mons" is not known: use an IANA name`},
		{"local timezone", func(s *Spec) { s.Schedule.Timezone = "Local" }, `schedule: timezone "Local" is not known`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := fullSpec()
			tc.mutate(s)
			err := s.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() =\n%v\nwant an error containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate() error does not match ErrInvalid")
			}
		})
	}
}

// setDefault gives the "limits" parameter of fullSpec a type and a default.
func setDefault(s *Spec, typ, def string) {
	s.Parameters[1].Type = typ
	s.Parameters[1].Default = json.RawMessage(def)
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*Spec)
	}{
		{"zero spec_version", func(s *Spec) { s.SpecVersion = 0 }},
		{"name with dots, dashes and underscores", func(s *Spec) { s.Name = "9.etl_daily-v2" }},
		{"integer default", func(s *Spec) { setDefault(s, "integer", `-12345678901234567890`) }},
		{"integer default for a number", func(s *Spec) { setDefault(s, "number", `3`) }},
		{"number default", func(s *Spec) { setDefault(s, "number", `-1.5e-3`) }},
		{"string default", func(s *Spec) { setDefault(s, "string", `"x"`) }},
		{"boolean default", func(s *Spec) { setDefault(s, "boolean", `false`) }},
		{"array default", func(s *Spec) { setDefault(s, "array", `[1,"a"]`) }},
		{"null default for an array (a nil slice)", func(s *Spec) { setDefault(s, "array", `null`) }},
		{"null default for an object (a nil map)", func(s *Spec) { setDefault(s, "object", `null`) }},
		{"null default for a pointer parameter", func(s *Spec) { setDefault(s, "integer", `null`) }},
		{"any default for an any parameter", func(s *Spec) { setDefault(s, "any", `[1,"a"]`) }},
		{"default with space around", func(s *Spec) { setDefault(s, "boolean", " true\n") }},
		{"null const", func(s *Spec) { s.Tasks[1].Inputs[1].Value = json.RawMessage(`null`) }},
		{"descriptor", func(s *Spec) { s.Schedule.Cron = "@hourly" }},
		{"day names", func(s *Spec) { s.Schedule.Cron = "0 9 * * MON-FRI" }},
		{"UTC", func(s *Spec) { s.Schedule.Timezone = "UTC" }},
		{"no timezone", func(s *Spec) { s.Schedule.Timezone = "" }},
		{"no schedule", func(s *Spec) { s.Schedule = nil }},
		{"backoff below one", func(s *Spec) { s.Tasks[0].Options.Backoff = 0.5 }},
		{"secret name with a leading underscore", func(s *Spec) { s.Secrets[0].Name = "_TOKEN" }},
		{"a task in two inputs and after", func(s *Spec) {
			s.Tasks[2].Inputs = append(s.Tasks[2].Inputs, Input{Kind: InputTask, Task: "extract"})
		}},
		{"input from a later task", func(s *Spec) { s.Tasks[0], s.Tasks[2] = s.Tasks[2], s.Tasks[0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := fullSpec()
			tc.mutate(s)
			if err := s.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	s := fullSpec()
	s.Name = ""
	s.Tasks[0].Options.Retries = -1
	s.Tasks[2].After = []string{"nope"}
	s.Secrets[0].Name = "db-password"
	s.Schedule.Cron = "never"
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want five problems")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 5 {
		t.Errorf("Validate() reported %d problems, want 5:\n%v", len(lines), err)
	}
	for _, line := range lines {
		if !strings.HasPrefix(line, "spec: ") {
			t.Errorf("problem %q does not start with the spec's name", line)
		}
	}
}

func TestValidateCycles(t *testing.T) {
	t.Parallel()
	const fix = ": remove one of these inputs or after entries"
	from := func(ids ...string) []Input {
		var in []Input
		for _, id := range ids {
			in = append(in, Input{Kind: InputTask, Task: id})
		}
		return in
	}
	for _, tc := range []struct {
		name  string
		tasks []Task
		want  string // the whole error; empty for none
	}{
		{
			name: "three tasks through inputs",
			tasks: []Task{
				{ID: "a", Task: "t", Inputs: from("c")},
				{ID: "b", Task: "t", Inputs: from("a")},
				{ID: "c", Task: "t", Inputs: from("b")},
			},
			want: `spec "cyc": cycle: a → b → c → a` + fix,
		},
		{
			name: "the same cycle, listed from the second task",
			tasks: []Task{
				{ID: "x", Task: "t", Inputs: from("b")},
				{ID: "a", Task: "t", Inputs: from("c")},
				{ID: "b", Task: "t", Inputs: from("a")},
				{ID: "c", Task: "t", Inputs: from("b")},
			},
			want: `spec "cyc": cycle: b → c → a → b` + fix,
		},
		{
			name:  "a task's input from itself",
			tasks: []Task{{ID: "a", Task: "t", Inputs: from("a")}},
			want:  `spec "cyc": cycle: a → a` + fix,
		},
		{
			name: "through after",
			tasks: []Task{
				{ID: "a", Task: "t", After: []string{"b"}},
				{ID: "b", Task: "t", Inputs: from("a")},
			},
			want: `spec "cyc": cycle: a → b → a` + fix,
		},
		{
			name: "two cycles",
			tasks: []Task{
				{ID: "a", Task: "t", Inputs: from("b")},
				{ID: "b", Task: "t", Inputs: from("a")},
				{ID: "c", Task: "t", After: []string{"d"}},
				{ID: "d", Task: "t", Inputs: from("c", "c")},
			},
			want: `spec "cyc": cycle: a → b → a` + fix + "\n" + `spec "cyc": cycle: c → d → c` + fix,
		},
		{
			name: "a diamond",
			tasks: []Task{
				{ID: "a", Task: "t"},
				{ID: "b", Task: "t", Inputs: from("a")},
				{ID: "c", Task: "t", Inputs: from("a"), After: []string{"b"}},
				{ID: "d", Task: "t", Inputs: from("b", "c"), After: []string{"a"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &Spec{SpecVersion: Version, Name: "cyc", Tasks: tc.tasks}
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("Validate() =\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestValidateNilSpec(t *testing.T) {
	t.Parallel()
	var s *Spec
	if err := s.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate() of a nil spec = %v, want ErrInvalid", err)
	}
}
