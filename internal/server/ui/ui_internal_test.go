package ui

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

func TestCSRFToken(t *testing.T) {
	t.Parallel()
	// base64url(HMAC-SHA256(key = SHA-256(token), "reeve-ui-csrf")), as
	// docs/design.md says.
	token := "reeve_abc"
	key := sha256.Sum256([]byte(token))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("reeve-ui-csrf"))
	if got, want := csrfToken(token), base64.RawURLEncoding.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("csrfToken = %q, want %q", got, want)
	}
	if csrfToken("reeve_a") == csrfToken("reeve_b") {
		t.Error("two tokens share a CSRF token")
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"":                             "/ui/runs",
		"/ui/runs?state=Failed":        "/ui/runs?state=Failed",
		"/ui/runs/r1?tab=logs#L3":      "/ui/runs/r1?tab=logs#L3",
		"//evil.example/ui/":           "/ui/runs",
		"/\\evil.example":              "/ui/runs",
		"/ui/\\\\evil.example":         "/ui/runs",
		"https://evil.example/ui/":     "/ui/runs",
		"javascript:alert(1)":          "/ui/runs",
		"/api/v1/tokens":               "/ui/runs",
		"/ui/x\r\nSet-Cookie: a=b":     "/ui/runs",
		"/ui/../api/v1/tokens":         "/ui/runs",
		"/ui/%2e%2e/api/v1/tokens":     "/ui/runs",
		"ui/runs":                      "/ui/runs",
		"/ui/preferences?saved=1":      "/ui/preferences?saved=1",
		"/uix/runs":                    "/ui/runs",
		"/ui/runs?next=//evil.example": "/ui/runs?next=//evil.example",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

func TestRunFilter(t *testing.T) {
	t.Parallel()
	all := state.Kinds()
	without := func(ks ...state.Kind) []state.Kind {
		return slices.DeleteFunc(slices.Clone(all), func(k state.Kind) bool { return slices.Contains(ks, k) })
	}
	for _, tc := range []struct {
		query string
		want  []state.Kind
		err   bool
	}{
		{"", nil, false},
		{"state=Failed", []state.Kind{state.Failed}, false},
		{"state=Failed&state=Running", []state.Kind{state.Failed, state.Running}, false},
		{"state=Failed,Running", []state.Kind{state.Failed, state.Running}, false},
		{"state=!Failed", without(state.Failed), false},
		{"state=!Failed&state=!Cancelled", without(state.Failed, state.Cancelled), false},
		{"state=Failed&state=Running&state=!Running", []state.Kind{state.Failed}, false},
		{"state=Failed&state=!Failed", nil, true},
		{"state=failed", nil, true},
		{"state=!", nil, true},
		{"limit=0", nil, true},
		{"limit=201", nil, true},
		{"limit=x", nil, true},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := runFilter(q, time.UTC, time.Now())
		if (err != nil) != tc.err {
			t.Errorf("runFilter(%q) error = %v, want error: %v", tc.query, err, tc.err)
			continue
		}
		if !tc.err && !slices.Equal(f.States, tc.want) {
			t.Errorf("runFilter(%q) states = %v, want %v", tc.query, f.States, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	got := split("Needle, needle and NEEDLE.", "needle")
	want := []part{{"Needle", true}, {", ", false}, {"needle", true}, {" and ", false}, {"NEEDLE", true}, {".", false}}
	if !slices.Equal(got, want) {
		t.Errorf("split = %v, want %v", got, want)
	}
	if got := split("no match", "x"); !slices.Equal(got, []part{{"no match", false}}) {
		t.Errorf("split without a match = %v", got)
	}
}

func TestFormatter(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 13, 3, 5, 0, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no zone database: %v", err)
	}
	for _, tc := range []struct {
		f    formatter
		want string
	}{
		{formatter{loc: time.UTC}, "2026-11-26 13:03:05 UTC"},
		{formatter{loc: paris}, "2026-11-26 14:03:05 CET"},
		{formatter{loc: paris, clock12: true}, "2026-11-26 2:03:05 PM CET"},
	} {
		if got := tc.f.Time(at); got != tc.want {
			t.Errorf("Time = %q, want %q", got, tc.want)
		}
	}
	if got := (formatter{loc: time.UTC}).Time(time.Time{}); got != "—" {
		t.Errorf("the zero time = %q, want —", got)
	}
	for d, want := range map[time.Duration]string{850 * time.Millisecond: "850ms", 12500 * time.Millisecond: "12.5s", 185 * time.Second: "3m 05s", 2*time.Hour + 3*time.Minute: "2h 03m"} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestPrefsCookie(t *testing.T) {
	t.Parallel()
	p := prefs{Theme: "dark", Zone: "local", Browser: "Asia/Tokyo", Clock: "12"}
	q, err := url.ParseQuery(p.encode())
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("theme") != "dark" || q.Get("tz") != "local" || q.Get("browser") != "Asia/Tokyo" || q.Get("clock") != "12" {
		t.Errorf("encode = %q", p.encode())
	}
	if got := p.location().String(); got != "Asia/Tokyo" {
		t.Errorf("local with a browser zone = %s, want Asia/Tokyo", got)
	}
	if got := (prefs{Zone: "UTC", Browser: "Asia/Tokyo"}).location(); got.String() != "UTC" {
		t.Errorf("UTC = %s", got)
	}
	for _, z := range []string{"Local", "../../etc/passwd", "Mars/Olympus", "", "Europe/Paris "} {
		if z != "" && validZone(z) {
			t.Errorf("validZone(%q) = true", z)
		}
	}
}

// TestSortTasks: mapped children follow their parent in index order, not
// in the text order of their keys.
func TestSortTasks(t *testing.T) {
	var in []api.TaskRun
	for _, k := range []string{"a", "t", "t[0]", "t[10]", "t[11]", "t[1]", "t[2]", "u"} {
		tr := api.TaskRun{Key: k}
		if i := strings.Index(k, "["); i > 0 {
			tr.MapIndex, _ = strconv.Atoi(k[i+1 : len(k)-1])
		}
		in = append(in, tr)
	}
	var got []string
	for _, tr := range sortTasks(in) {
		got = append(got, tr.Key)
	}
	want := []string{"a", "t", "t[0]", "t[1]", "t[2]", "t[10]", "t[11]", "u"}
	if !slices.Equal(got, want) {
		t.Errorf("sortTasks = %v, want %v", got, want)
	}
}
