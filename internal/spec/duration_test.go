package spec

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDurationMarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{1500 * time.Millisecond, `"1.5s"`},
		{time.Hour, `"1h0m0s"`},
		{90 * time.Second, `"1m30s"`},
		{time.Nanosecond, `"1ns"`},
		{math.MaxInt64, `"2562047h47m16.854775807s"`},
	} {
		got, err := json.Marshal(Duration(tc.d))
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tc.d, got, err, tc.want)
		}
	}
}

func TestDurationUnmarshal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: `"1.5s"`, want: 1500 * time.Millisecond},
		{in: `"1h0m0s"`, want: time.Hour},
		{in: `"1h30m"`, want: 90 * time.Minute},
		{in: `"-2s"`, want: -2 * time.Second}, // Validate rejects it, with the field's name
		{in: `"0s"`, want: 0},
		{in: `1500000000`, want: 1500 * time.Millisecond},
		{in: `0`, want: 0},
		{in: `"-2562047h47m16.854775808s"`, want: math.MinInt64},
		{in: `"5 minutes"`, wantErr: `invalid duration "5 minutes": write it like "90s"`},
		{in: `"90"`, wantErr: `invalid duration "90"`},
		{in: `""`, wantErr: `invalid duration ""`},
		{in: `1.5`, wantErr: `invalid duration 1.5: write it as a string like "90s"`},
		{in: `1e9`, wantErr: `invalid duration 1e9`},
		{in: `99999999999999999999`, wantErr: `invalid duration 99999999999999999999`},
		{in: `true`, wantErr: `invalid duration true`},
		{in: `{}`, wantErr: `invalid duration {}`},
	} {
		var d Duration
		err := json.Unmarshal([]byte(tc.in), &d)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("Unmarshal(%s) error = %v, want one containing %q", tc.in, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || d.D() != tc.want):
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tc.in, d.D(), err, tc.want)
		}
	}
}

func TestDurationNullLeavesValue(t *testing.T) {
	t.Parallel()
	d := Duration(time.Second)
	if err := json.Unmarshal([]byte(`null`), &d); err != nil || d.D() != time.Second {
		t.Errorf("Unmarshal(null) = %v, %v; want 1s unchanged", d, err)
	}
}

func TestZeroDurationIsOmitted(t *testing.T) {
	t.Parallel()
	s := fullSpec()
	s.Tasks[0].Options = Options{Timeout: Duration(time.Minute)}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if !strings.Contains(out, `"timeout": "1m0s"`) {
		t.Errorf("Encode output lacks the timeout:\n%s", out)
	}
	for _, field := range []string{"retry_delay", "max_retry_delay", "cache_for"} {
		if strings.Contains(out, field) {
			t.Errorf("Encode output has the zero %s:\n%s", field, out)
		}
	}
}
