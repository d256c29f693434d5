package spec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestResolveParams(t *testing.T) {
	t.Parallel()
	s := &Spec{Name: "etl", Parameters: []Parameter{
		{Name: "day", Type: "string", Required: true},
		{Name: "limit", Type: "integer", Default: json.RawMessage(`10`)},
		{Name: "ratio", Type: "number", Default: json.RawMessage(`0.5`)},
		{Name: "extra", Type: "any", Default: json.RawMessage(`null`)},
	}}
	tests := []struct {
		name    string
		given   string
		want    map[string]string
		wantErr []string
	}{
		{name: "defaults fill in", given: `{"day": "mon"}`, want: map[string]string{"day": `"mon"`, "limit": `10`, "ratio": `0.5`, "extra": `null`}},
		{name: "integer is a number", given: `{"day": "mon", "ratio": 2, "extra": {"a": [1]}}`, want: map[string]string{"day": `"mon"`, "limit": `10`, "ratio": `2`, "extra": `{"a":[1]}`}},
		{name: "missing required", given: `{}`, wantErr: []string{`parameter "day" (string) is required`}},
		{name: "nothing given", given: ``, wantErr: []string{`parameter "day" (string) is required`}},
		{name: "wrong types and unknown together", given: `{"day": 3, "limit": 1.5, "colour": "red"}`, wantErr: []string{
			`parameter "day" must be of type string, not 3`, `parameter "limit" must be of type integer, not 1.5`, `flow "etl" has no parameter "colour": it takes day, limit, ratio, extra`}},
		{name: "not an object", given: `[1]`, wantErr: []string{"parameters must be a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.ResolveParams(json.RawMessage(tt.given))
			if tt.wantErr != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d values, want %d: %s", len(got), len(tt.want), got)
			}
			for k, v := range tt.want {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}
