package scheduler_test

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/store"
)

// ts parses an RFC 3339 time for a test table.
func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNextCron(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cron  string
		tz    string
		after string
		n     int
		want  []string
	}{
		{"hourly", "@hourly", "", "2025-06-01T10:15:00Z", 3,
			[]string{"2025-06-01T11:00:00Z", "2025-06-01T12:00:00Z", "2025-06-01T13:00:00Z"}},
		{"strictly after a fire time", "30 2 * * *", "UTC", "2025-06-01T02:30:00Z", 2,
			[]string{"2025-06-02T02:30:00Z", "2025-06-03T02:30:00Z"}},
		{"fraction of a second after a fire time", "*/15 * * * *", "", "2025-06-01T10:00:00.5Z", 2,
			[]string{"2025-06-01T10:15:00Z", "2025-06-01T10:30:00Z"}},
		{"just before a fire time", "*/15 * * * *", "", "2025-06-01T10:14:59.999Z", 1,
			[]string{"2025-06-01T10:15:00Z"}},
		{"seconds field", "30 * * * * *", "", "2025-06-01T10:00:00Z", 2,
			[]string{"2025-06-01T10:00:30Z", "2025-06-01T10:01:30Z"}},
		{"weekdays in New York", "0 9 * * 1-5", "America/New_York", "2025-01-10T10:00:00-05:00", 3,
			[]string{"2025-01-13T09:00:00-05:00", "2025-01-14T09:00:00-05:00", "2025-01-15T09:00:00-05:00"}},
		{"midnight in Tokyo", "@daily", "Asia/Tokyo", "2025-01-01T00:00:00Z", 2,
			[]string{"2025-01-01T15:00:00Z", "2025-01-02T15:00:00Z"}},
		{"leap day", "0 0 29 2 *", "", "2025-01-01T00:00:00Z", 2,
			[]string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"year field fires no more", "0 0 1 1 * 2030", "", "2029-06-01T00:00:00Z", 3,
			[]string{"2030-01-01T00:00:00Z"}},
		{"year field past", "0 0 1 1 * 2020", "", "2025-06-01T10:15:00Z", 3, nil},
		{"never fires", "0 0 30 2 *", "", "2025-06-01T10:15:00Z", 3, nil},
		{"none asked", "@hourly", "", "2025-06-01T10:15:00Z", 0, nil},

		// Daylight-saving changes: each wall-clock time fires once, at the
		// first instant the clock reads it or later.
		{"daily, clock jumps forward over it: fires at the jump", "30 2 * * *", "Europe/Paris", "2025-03-29T12:00:00+01:00", 3,
			[]string{"2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00", "2025-04-01T02:30:00+02:00"}},
		{"daily, clock falls back over it: fires once", "30 2 * * *", "Europe/Paris", "2025-10-25T12:00:00+02:00", 3,
			[]string{"2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00", "2025-10-28T02:30:00+01:00"}},
		{"half-hourly, clock jumps forward", "*/30 * * * *", "Europe/Paris", "2025-03-30T01:00:00+01:00", 3,
			[]string{"2025-03-30T01:30:00+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T03:30:00+02:00"}},
		{"half-hourly, clock falls back", "*/30 * * * *", "Europe/Paris", "2025-10-26T01:00:00+02:00", 5,
			[]string{"2025-10-26T01:30:00+02:00", "2025-10-26T02:00:00+02:00", "2025-10-26T02:30:00+02:00", "2025-10-26T03:00:00+01:00", "2025-10-26T03:30:00+01:00"}},
		{"after, in the hour read twice", "*/30 * * * *", "Europe/Paris", "2025-10-26T02:15:00+01:00", 2,
			[]string{"2025-10-26T03:00:00+01:00", "2025-10-26T03:30:00+01:00"}},
		{"at the jump forward", "*/30 * * * *", "Europe/Paris", "2025-03-30T03:00:00+02:00", 1,
			[]string{"2025-03-30T03:30:00+02:00"}},
		{"hourly, New York falls back", "0 * * * *", "America/New_York", "2025-11-02T00:30:00-04:00", 3,
			[]string{"2025-11-02T01:00:00-04:00", "2025-11-02T02:00:00-05:00", "2025-11-02T03:00:00-05:00"}},
		{"half-hour jump (Lord Howe)", "15 2 * * *", "Australia/Lord_Howe", "2025-10-04T12:00:00+10:30", 2,
			[]string{"2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := store.Schedule{ID: "sc1", Cron: tc.cron, Timezone: tc.tz}
			got, err := scheduler.Next(sc, ts(t, tc.after), tc.n)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			checkTimes(t, got, tc.want)
			wantZone := cmp.Or(tc.tz, "UTC")
			for _, g := range got {
				if g.Location().String() != wantZone {
					t.Errorf("Next returned %s in %s, want in %s", g, g.Location(), wantZone)
				}
			}
		})
	}
}

func TestNextInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		interval time.Duration
		anchor   string // "" for none
		created  string
		tz       string
		after    string
		n        int
		want     []string
	}{
		{"anchor in the past", time.Hour, "2025-01-01T00:00:00Z", "", "", "2025-01-01T10:30:00Z", 3,
			[]string{"2025-01-01T11:00:00Z", "2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z"}},
		{"after on a fire time", time.Hour, "2025-01-01T00:00:00Z", "", "", "2025-01-01T10:00:00Z", 1,
			[]string{"2025-01-01T11:00:00Z"}},
		{"after on the anchor", time.Hour, "2025-01-01T00:00:00Z", "", "", "2025-01-01T00:00:00Z", 1,
			[]string{"2025-01-01T01:00:00Z"}},
		{"anchor in the future", time.Hour, "2025-01-02T00:00:00Z", "", "", "2025-01-01T10:30:00Z", 3,
			[]string{"2025-01-02T00:00:00Z", "2025-01-02T01:00:00Z", "2025-01-02T02:00:00Z"}},
		{"no anchor: from creation", 10 * time.Minute, "", "2025-01-01T09:03:00Z", "", "2025-01-01T10:00:00Z", 2,
			[]string{"2025-01-01T10:03:00Z", "2025-01-01T10:13:00Z"}},
		{"anchor over creation", 10 * time.Minute, "2025-01-01T00:05:00Z", "2025-01-01T09:03:00Z", "", "2025-01-01T10:00:00Z", 1,
			[]string{"2025-01-01T10:05:00Z"}},
		{"odd interval, long ago", 7*time.Second + time.Millisecond, "2020-01-01T00:00:00Z", "", "", "2025-01-01T00:00:00Z", 2,
			[]string{"2025-01-01T00:00:00.179Z", "2025-01-01T00:00:07.18Z"}},
		{"elapsed time across a clock change", 90 * time.Minute, "2025-03-30T00:00:00+01:00", "", "Europe/Paris", "2025-03-30T01:00:00+01:00", 2,
			[]string{"2025-03-30T01:30:00+01:00", "2025-03-30T04:00:00+02:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := store.Schedule{ID: "sc1", Interval: tc.interval, Timezone: tc.tz}
			if tc.anchor != "" {
				sc.Anchor = ts(t, tc.anchor)
			}
			if tc.created != "" {
				sc.CreatedAt = ts(t, tc.created)
			}
			got, err := scheduler.Next(sc, ts(t, tc.after), tc.n)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			checkTimes(t, got, tc.want)
		})
	}
}

func TestNextInvalid(t *testing.T) {
	t.Parallel()
	anchor := ts(t, "2025-01-01T00:00:00Z")
	for _, tc := range []struct {
		name string
		sc   store.Schedule
		want string
	}{
		{"cron and interval", store.Schedule{Cron: "@daily", Interval: time.Hour}, "keep one"},
		{"neither", store.Schedule{}, "neither a cron expression nor an interval"},
		{"negative interval", store.Schedule{Interval: -time.Hour, Anchor: anchor}, "negative"},
		{"bad cron", store.Schedule{Cron: "61 * * * *"}, `cron "61 * * * *" is not valid`},
		{"not cron at all", store.Schedule{Cron: "every day"}, "is not valid"},
		{"unknown zone", store.Schedule{Cron: "@daily", Timezone: "Mars/Olympus_Mons"}, `time zone "Mars/Olympus_Mons" is not known`},
		{"local zone", store.Schedule{Cron: "@daily", Timezone: "Local"}, "is not known"},
		{"no anchor, no creation time", store.Schedule{Interval: time.Hour}, "no anchor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.sc.ID = "sc-7"
			got, err := scheduler.Next(tc.sc, anchor, 3)
			if err == nil {
				t.Fatalf("Next = %v, want an error", got)
			}
			if !errors.Is(err, reeve.ErrInvalid) {
				t.Errorf("Next error %q is not ErrInvalid", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, "schedule sc-7") {
				t.Errorf("Next error %q does not name the schedule and say %q", msg, tc.want)
			}
		})
	}
}

// fuzzZones are the time zones FuzzNextCron picks from: with and without
// daylight saving, north and south, whole and half-hour changes.
var fuzzZones = []string{"", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago", "Pacific/Apia"}

func FuzzNextCron(f *testing.F) {
	for _, expr := range []string{"@hourly", "*/30 * * * *", "30 2 * * *", "0 0 29 2 *", "0 9 * * 1-5", "* * * * * *", "0 0 1 1 * 2030", "0 0 30 2 *", "5,10 1-3 */2 * 0"} {
		f.Add(expr, int64(1743292800), uint8(1)) // 2025-03-30, a clock change in Paris
	}
	f.Add("*/30 * * * *", int64(1761436800), uint8(1)) // 2025-10-26
	f.Add("0 * * * *", int64(1762059600), uint8(2))    // 2025-11-02
	f.Fuzz(func(t *testing.T, expr string, unix int64, zone uint8) {
		if len(expr) > 100 {
			return
		}
		// 1970 to 2200: gronx searches by years; far dates only slow it.
		after := time.Unix(unix%(230*365*86400), 0).UTC()
		if after.Before(time.Unix(0, 0)) {
			after = time.Unix(-unix%(230*365*86400), 0).UTC()
		}
		sc := store.Schedule{ID: "fuzz", Cron: expr, Timezone: fuzzZones[int(zone)%len(fuzzZones)]}
		const n = 5
		got, err := scheduler.Next(sc, after, n)
		if err != nil {
			if !errors.Is(err, reeve.ErrInvalid) {
				t.Fatalf("Next error %q is not ErrInvalid", err)
			}
			return
		}
		if len(got) > n {
			t.Fatalf("Next returned %d times, want at most %d", len(got), n)
		}
		last := after
		for i, g := range got {
			if !g.After(last) {
				t.Fatalf("Next(%q, %s, %s): time %d, %s, is not after %s", expr, sc.Timezone, after, i, g, last)
			}
			last = g
		}
		// Asking again from a fire time gives the times after it.
		if len(got) >= 2 {
			again, err := scheduler.Next(sc, got[0], len(got)-1)
			if err != nil {
				t.Fatalf("Next(%q, %s, from %s): %v", expr, sc.Timezone, got[0], err)
			}
			if !slices.EqualFunc(again, got[1:], time.Time.Equal) {
				t.Fatalf("Next(%q, %s) from %s = %v, but from %s it continues %v", expr, sc.Timezone, after, got, got[0], again)
			}
		}
	})
}

func checkTimes(t *testing.T, got []time.Time, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d times %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if w := ts(t, want[i]); !got[i].Equal(w) {
			t.Errorf("time %d = %s, want %s", i, got[i].Format(time.RFC3339Nano), w.Format(time.RFC3339Nano))
		}
	}
}
