package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestParseDatabaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw      string
		want     database
		wantText string
		bad      bool
	}{
		{raw: "", want: database{kind: "sqlite", path: filepath.Join("/data", "reeve.db")}},
		{raw: "sqlite:///var/lib/reeve/reeve.db", want: database{kind: "sqlite", path: filepath.FromSlash("/var/lib/reeve/reeve.db")}},
		{raw: "sqlite://db/reeve.db", want: database{kind: "sqlite", path: filepath.FromSlash("db/reeve.db")}},
		{raw: "postgres://reeve:pw@db:5432/reeve", want: database{kind: "postgres", url: "postgres://reeve:pw@db:5432/reeve"}, wantText: "postgres postgres://reeve:xxxxx@db:5432/reeve"},
		{raw: "postgresql://db/reeve", want: database{kind: "postgres", url: "postgresql://db/reeve"}},
		{raw: "sqlite://", bad: true},
		{raw: "sqlite:///", bad: true},
		{raw: "sqlite://reeve.db?mode=memory", bad: true},
		{raw: "mysql://u:p@h/db", bad: true},
		{raw: "reeve.db", bad: true},
		{raw: "/abs/reeve.db", bad: true},
		{raw: "SQLITE://x", bad: true},
	}
	for _, tt := range tests {
		got, err := parseDatabaseURL("--database-url", tt.raw, "/data")
		if tt.bad {
			if err == nil {
				t.Errorf("parseDatabaseURL(%q) = %+v; want a usage error", tt.raw, got)
			} else if _, ok := err.(usageError); !ok {
				t.Errorf("parseDatabaseURL(%q) error %v is not a usage error", tt.raw, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseDatabaseURL(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
		}
		if tt.wantText != "" && got.String() != tt.wantText {
			t.Errorf("database(%q).String() = %q; want %q", tt.raw, got.String(), tt.wantText)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://u:secret@h/db":        "postgres://u:xxxxx@h/db",
		"postgres://u@h/db":               "postgres://u@h/db",
		"postgres://h/db":                 "postgres://h/db",
		"postgres://u:p@ss@h/db?x=1":      "postgres://u:xxxxx@h/db?x=1",
		"host=h password=secret":          "host=h password=secret", // not a URL: not accepted either
		"postgresql://u:s%40cret@h:5/db":  "postgresql://u:xxxxx@h:5/db",
		"postgres://@h/db":                "postgres://@h/db",
		"postgres://u:secret@h/db#frag@x": "postgres://u:xxxxx@x",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q; want %q", raw, got, want)
		}
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("the data directory is under os.UserConfigDir on " + runtime.GOOS)
	}
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/reeve"},
		{map[string]string{"XDG_DATA_HOME": "relative", "HOME": "/home/u"}, "/home/u/.local/share/reeve"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/reeve"},
		{map[string]string{}, ""},
	} {
		c := New(Options{LookupEnv: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }})
		got, err := c.defaultDataDir()
		if tt.want == "" {
			if err == nil {
				t.Errorf("env %v: defaultDataDir = %q; want an error", tt.env, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("env %v: defaultDataDir = %q, %v; want %q", tt.env, got, err, tt.want)
		}
	}
}

func TestParamValue(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ text, typ, want string }{
		{"42", "string", `"42"`},
		{"true", "string", `"true"`},
		{"42", "integer", `42`},
		{"many", "integer", `"many"`},
		{`[1,2]`, "array", `[1,2]`},
		{`{"a":1}`, "object", `{"a":1}`},
		{"Bob", "", `"Bob"`},
		{"3.5", "", `3.5`},
		{"", "", `""`},
	} {
		got := paramValue(tt.text, tt.typ)
		if string(got) != tt.want || !json.Valid(got) {
			t.Errorf("paramValue(%q, %q) = %s; want %s", tt.text, tt.typ, got, tt.want)
		}
	}
}

func TestParseAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		at   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"2026-02-03T04:05:06Z", time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), false},
		{"10m", now.Add(10 * time.Minute), false},
		{"+2h", now.Add(2 * time.Hour), false},
		{"-5m", time.Time{}, true},
		{"tomorrow", time.Time{}, true},
	} {
		got, err := parseAt(tt.at, now)
		if (err != nil) != tt.bad || !got.Equal(tt.want) {
			t.Errorf("parseAt(%q) = %v, %v; want %v (error: %v)", tt.at, got, err, tt.want, tt.bad)
		}
	}
}

func TestTimeFormatter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rel := timeFormatter{relative: true, now: func() time.Time { return now }}
	abs := timeFormatter{relative: false, now: func() time.Time { return now }}
	for _, tt := range []struct {
		t        time.Time
		rel, abs string
	}{
		{time.Time{}, "-", "-"},
		{now, "just now", "2026-01-02T03:04:05Z"},
		{now.Add(-45 * time.Second), "45s ago", "2026-01-02T03:03:20Z"},
		{now.Add(-3 * time.Minute), "3m ago", "2026-01-02T03:01:05Z"},
		{now.Add(-5 * time.Hour), "5h ago", "2026-01-01T22:04:05Z"},
		{now.Add(-72 * time.Hour), "3d ago", "2025-12-30T03:04:05Z"},
		{now.Add(10 * time.Minute), "in 10m", "2026-01-02T03:14:05Z"},
	} {
		if got := rel.format(tt.t); got != tt.rel {
			t.Errorf("relative format(%v) = %q; want %q", tt.t, got, tt.rel)
		}
		if got := abs.format(tt.t); got != tt.abs {
			t.Errorf("absolute format(%v) = %q; want %q", tt.t, got, tt.abs)
		}
	}
}

func TestLongLived(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		method, target, accept string
		want                   bool
	}{
		{"POST", "/api/v1/agents/a1/claim?wait=30s", "", true},
		{"GET", "/api/v1/flow_runs/r1/logs?follow=true", "", true},
		{"GET", "/api/v1/flow_runs/r1/logs?follow=1", "", true},
		{"GET", "/api/v1/flow_runs/r1/logs", "text/event-stream", true},
		{"GET", "/api/v1/flow_runs/r1/logs", "", false},
		{"GET", "/api/v1/flow_runs/r1/logs?follow=false", "", false},
		{"POST", "/api/v1/flow_runs/r1/logs", "", false},
		{"POST", "/api/v1/agents/a1/heartbeat", "", false},
		{"GET", "/api/v1/projects", "", false},
		{"POST", "/agents/a1/claim", "", false},
	} {
		r := httptestRequest(tt.method, tt.target, tt.accept)
		if got := longLived(r); got != tt.want {
			t.Errorf("longLived(%s %s, Accept %q) = %v; want %v", tt.method, tt.target, tt.accept, got, tt.want)
		}
	}
}

func httptestRequest(method, target, accept string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	return r
}
