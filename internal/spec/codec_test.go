package spec

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	want := fullSpec()
	data, err := Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode(Encode(spec)): %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(Encode(spec)) differs from spec:\n got %+v\nwant %+v", got, want)
	}
	if got.Hash() != want.Hash() {
		t.Errorf("hash changed across the round trip: %s, want %s", got.Hash(), want.Hash())
	}
	again, err := Encode(got)
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("Encode is not stable across a round trip:\n%s\nthen\n%s", data, again)
	}
}

func TestEncodeFormat(t *testing.T) {
	t.Parallel()
	s := fullSpec()
	s.SpecVersion = 0
	s.Description = "<b> & </b>"
	data, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	for _, want := range []string{
		"{\n  \"spec_version\": 1,\n  \"name\": \"etl\",\n",
		`"description": "<b> & </b>"`,
		"\n      \"id\": \"extract\",\n",
		`"retry_delay": "1.5s"`,
		"\n}\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Encode output lacks %q:\n%s", want, out)
		}
	}
	if strings.HasSuffix(out, "\n\n") {
		t.Errorf("Encode output ends with a blank line")
	}
	if s.SpecVersion != 0 {
		t.Errorf("Encode changed its argument's SpecVersion to %d", s.SpecVersion)
	}
}

// TestHashIgnoresFormatting decodes the same spec written two ways: keys in
// other orders (also inside values) and other white space.
func TestHashIgnoresFormatting(t *testing.T) {
	t.Parallel()
	a := `{"spec_version":1,"name":"f","parameters":[{"name":"p","type":"object","go_type":"map[string]any","default":{"x":1,"y":{"b":[1,2],"a":"s"}}}],
"tasks":[{"id":"a","task":"a","inputs":[{"kind":"const","value":{"k":true,"j":null}},{"kind":"param","param":"p"}],"options":{"timeout":"1m","retries":2}}]}`
	b := `{
	"tasks": [ { "options": { "retries": 2, "timeout": 60000000000 },
	             "inputs": [ { "value": { "j": null, "k": true }, "kind": "const" }, { "param": "p", "kind": "param" } ],
	             "task": "a", "id": "a" } ],
	"parameters": [ { "default": { "y": { "a": "s", "b": [ 1, 2 ] }, "x": 1 },
	                  "go_type": "map[string]any", "type": "object", "name": "p" } ],
	"name": "f",
	"spec_version": 1
}`
	sa, err := Decode([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Decode([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if sa.Hash() != sb.Hash() {
		t.Errorf("the same spec formatted two ways hashes differently: %s and %s", sa.Hash(), sb.Hash())
	}
	enc, err := Encode(sb)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Hash() != sa.Hash() {
		t.Errorf("hash changed across Encode and Decode: %s, want %s", sc.Hash(), sa.Hash())
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want []string // each must be in the error
	}{
		{"unknown top-level field", `{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a"}],"owner":"me"}`,
			[]string{`spec "etl"`, `unknown field "owner"`, "remove it"}},
		{"unknown nested field", `{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a","options":{"retires":3}}]}`,
			[]string{`spec "etl"`, `unknown field "retires"`}},
		{"future version", `{"spec_version":2,"name":"etl","tasks":[],"owner":"me"}`,
			[]string{`spec "etl" was written by a newer Reeve`, "spec_version 2", "upgrade Reeve"}},
		{"missing version", `{"name":"etl","tasks":[{"id":"a","task":"a"}]}`,
			[]string{`spec "etl": the document is not a Reeve flow spec`, "no spec_version"}},
		{"zero version", `{"spec_version":0,"name":"etl"}`, []string{"not a Reeve flow spec"}},
		{"null version", `{"spec_version":null}`, []string{"not a Reeve flow spec"}},
		{"negative version", `{"spec_version":-1}`, []string{"spec_version -1 is not valid"}},
		{"string version", `{"spec_version":"1"}`, []string{`spec_version "1" is not an integer`}},
		{"other JSON document", `{"dependencies":{"left-pad":"1.0"}}`, []string{"not a Reeve flow spec"}},
		{"array", `[1,2]`, []string{"not a Reeve flow spec", "not a JSON object"}},
		{"null", `null`, []string{"not a Reeve flow spec"}},
		{"empty", ``, []string{"invalid JSON"}},
		{"syntax error", `{"spec_version":1,`, []string{"invalid JSON"}},
		{"trailing data", `{"spec_version":1,"name":"etl"} {}`, []string{"invalid JSON"}},
		{"wrong field type", `{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a","mapped":"yes"}]}`,
			[]string{`spec "etl"`, "mapped"}},
		{"bad duration", `{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a","options":{"timeout":"5 minutes"}}]}`,
			[]string{`spec "etl"`, `invalid duration "5 minutes"`}},
		{"invalid spec", `{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a","after":["b"]}]}`,
			[]string{`spec "etl": task "a": after: unknown task "b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, want an error", tc.in, s)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Decode(%s) error = %q, want it to contain %q", tc.in, err, want)
				}
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode(%s) error %q does not match ErrInvalid", tc.in, err)
			}
		})
	}
}

func TestDecodeNanosecondDuration(t *testing.T) {
	t.Parallel()
	s, err := Decode([]byte(`{"spec_version":1,"name":"etl","tasks":[{"id":"a","task":"a","options":{"timeout":90000000000}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Tasks[0].Options.Timeout.D(); got != 90*time.Second {
		t.Errorf("timeout = %v, want 1m30s", got)
	}
}

// FuzzDecode checks that Decode never panics, that its errors match
// ErrInvalid, and that a spec it accepts is encoded, decoded and encoded
// again to the same bytes, with the same hash. (An empty list reads back as
// an absent one, so the decoded structs themselves may differ.)
func FuzzDecode(f *testing.F) {
	full, err := Encode(fullSpec())
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(full),
		`{"spec_version":1,"name":"f","tasks":[{"id":"a","task":"a"}]}`,
		`{"spec_version":1,"name":"f","tasks":[{"id":"a","task":"a","inputs":[{"kind":"task","task":"c"}]},{"id":"b","task":"b","after":["a"]},{"id":"c","task":"c","inputs":[{"kind":"task","task":"b"}]}]}`,
		`{"spec_version":1,"name":"f","parameters":[{"name":"n","type":"integer","go_type":"int","default":1.5}],"tasks":[]}`,
		`{"spec_version":1,"name":"f","tasks":[{"id":"a","task":"a","options":{"timeout":-1,"backoff":-2}}],"schedule":{"cron":"*/0 * * * *","timezone":"Local"}}`,
		`{"spec_version":9,"name":"f"}`,
		`{"SPEC_VERSION":1,"Name":"f","tasks":[{"id":"a","task":"a"}]}`,
		`[]`,
		`null`,
		`{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %q does not match ErrInvalid", err)
			}
			return
		}
		enc, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode of a decoded spec: %v", err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(spec)): %v\n%s", err, enc)
		}
		if enc2, err := Encode(again); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("Encode(Decode(Encode(spec))) differs from Encode(spec): %v\n%s\nthen\n%s", err, enc, enc2)
		}
		if again.Hash() != s.Hash() {
			t.Fatalf("hash changed across Encode and Decode:\n%s", enc)
		}
	})
}
