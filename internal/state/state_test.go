package state

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestKindCategories(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		k                           Kind
		finished, success, failures bool
	}{
		{Pending, false, false, false},
		{Scheduled, false, false, false},
		{Submitted, false, false, false},
		{Running, false, false, false},
		{Retrying, false, false, false},
		{Cancelling, false, false, false},
		{Success, true, true, false},
		{Failed, true, false, true},
		{TimedOut, true, false, true},
		{TriggerFailed, true, false, true},
		{Skipped, true, true, false},
		{Cached, true, true, false},
		{Mapped, true, true, false},
		{Cancelled, true, false, false},
	} {
		if tc.k.Finished() != tc.finished || tc.k.Successful() != tc.success || tc.k.Failure() != tc.failures {
			t.Errorf("%s: finished=%v successful=%v failure=%v", tc.k, tc.k.Finished(), tc.k.Successful(), tc.k.Failure())
		}
	}
	if len(Kinds()) != 14 {
		t.Errorf("%d kinds", len(Kinds()))
	}
}

func TestKindText(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds() {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var back Kind
		if err := json.Unmarshal(b, &back); err != nil || back != k {
			t.Errorf("%s: round trip gave %v (%v)", k, back, err)
		}
	}
	var k Kind
	err := json.Unmarshal([]byte(`"Succeeded"`), &k)
	if err == nil || !strings.Contains(err.Error(), `unknown state "Succeeded"`) || !strings.Contains(err.Error(), "Success") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := json.Marshal(Kind(200)); err == nil {
		t.Error("an invalid kind marshaled")
	}
}

func TestCountsJSON(t *testing.T) {
	t.Parallel()
	var c Counts
	c[Success], c[Failed] = 8, 2
	b, err := json.Marshal(State{Kind: Mapped, Counts: &c})
	if err != nil || !strings.Contains(string(b), `"children":{"Failed":2,"Success":8}`) {
		t.Fatalf("%s %v", b, err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil || *back.Counts != c || back.Counts.Total() != 10 {
		t.Errorf("%+v %v", back, err)
	}
	if c.String() != "8 Success, 2 Failed" {
		t.Errorf("counts string %q", c.String())
	}
}
