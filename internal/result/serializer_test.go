package result

import (
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type point struct {
	Name   string
	X, Y   float64
	Tags   []string
	Labels map[string]string
	At     time.Time
	Next   *point
}

// roundTrip marshals v with s and unmarshals it into a fresh T.
func roundTrip[T any](t *testing.T, s Serializer, v T) {
	t.Helper()
	data, err := s.Marshal(v)
	if err != nil {
		t.Fatalf("%s Marshal(%#v): %v", s.Name(), v, err)
	}
	var got T
	if err := s.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s Unmarshal(%q): %v", s.Name(), data, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("%s round trip = %#v, want %#v", s.Name(), got, v)
	}
}

func TestSerializersRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 30, 0, 123, time.UTC)
	values := []struct {
		name string
		run  func(*testing.T, Serializer)
	}{
		{"struct", func(t *testing.T, s Serializer) {
			roundTrip(t, s, point{
				Name: "p", X: 1.5, Y: -2, Tags: []string{"a", "b"},
				Labels: map[string]string{"k": "v"}, At: at,
				Next: &point{Name: "q", X: 3, At: at},
			})
		}},
		{"pointer to struct", func(t *testing.T, s Serializer) { roundTrip(t, s, &point{Name: "p", At: at}) }},
		{"int slice", func(t *testing.T, s Serializer) { roundTrip(t, s, []int{3, 1, 2}) }},
		{"map", func(t *testing.T, s Serializer) { roundTrip(t, s, map[string]int{"a": 1, "b": 2}) }},
		{"nested map", func(t *testing.T, s Serializer) {
			roundTrip(t, s, map[string][]point{"ps": {{Name: "p", At: at}}})
		}},
		{"string", func(t *testing.T, s Serializer) { roundTrip(t, s, "héllo\n") }},
		{"int64", func(t *testing.T, s Serializer) { roundTrip(t, s, int64(-1)<<62) }},
		{"bool", func(t *testing.T, s Serializer) { roundTrip(t, s, true) }},
		{"bytes", func(t *testing.T, s Serializer) { roundTrip(t, s, []byte{0, 1, 255}) }},
	}
	for _, s := range []Serializer{JSON(), Gob()} {
		for _, v := range values {
			t.Run(s.Name()+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				v.run(t, s)
			})
		}
	}
}

func TestSerializerErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []Serializer{JSON(), Gob()} {
		t.Run(s.Name(), func(t *testing.T) {
			t.Parallel()
			data, err := s.Marshal([]int{1})
			if err != nil {
				t.Fatal(err)
			}
			var notPointer []int
			if err := s.Unmarshal(data, notPointer); err == nil {
				t.Error("Unmarshal into a non-pointer succeeded")
			}
			var wrongType struct{ A chan int }
			if err := s.Unmarshal(data, &wrongType); err == nil {
				t.Error("Unmarshal into a mismatched type succeeded")
			}
			if err := s.Unmarshal([]byte("garbage"), new([]int)); err == nil || !strings.HasPrefix(err.Error(), s.Name()+" serializer: ") {
				t.Errorf("Unmarshal garbage: err = %v, want one starting %q", err, s.Name()+" serializer: ")
			}
			if _, err := s.Marshal(make(chan int)); err == nil {
				t.Error("Marshal of a channel succeeded")
			}
		})
	}
}

func TestLookupSerializer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, want string
	}{
		{"", "json"},
		{"json", "json"},
		{"gob", "gob"},
	}
	for _, tt := range tests {
		s, err := LookupSerializer(tt.name)
		if err != nil {
			t.Fatalf("LookupSerializer(%q): %v", tt.name, err)
		}
		if s.Name() != tt.want {
			t.Errorf("LookupSerializer(%q).Name() = %q, want %q", tt.name, s.Name(), tt.want)
		}
	}

	_, err := LookupSerializer("yaml")
	if err == nil {
		t.Fatal("LookupSerializer(\"yaml\") succeeded")
	}
	for _, w := range []string{`"yaml"`, "gob", "json", "reeve.RegisterSerializer"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("unknown serializer error %q does not contain %q", err, w)
		}
	}
}

type namedSerializer struct {
	name string
	Serializer
}

func (n namedSerializer) Name() string { return n.name }

// registrations makes serializer names unique across -count runs: the
// registry is process-wide and has no Unregister.
var registrations atomic.Int64

func TestRegisterSerializer(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("test-json-copy-%d", registrations.Add(1))
	custom := namedSerializer{name: name, Serializer: JSON()}
	if err := RegisterSerializer(custom); err != nil {
		t.Fatalf("RegisterSerializer: %v", err)
	}
	got, err := LookupSerializer(name)
	if err != nil || got != Serializer(custom) {
		t.Fatalf("LookupSerializer after register = %v, %v", got, err)
	}

	tests := []struct {
		name string
		s    Serializer
		want string
	}{
		{"nil", nil, "serializer is nil"},
		{"empty name", namedSerializer{name: "", Serializer: JSON()}, "Name() is empty"},
		{"spaces", namedSerializer{name: " json ", Serializer: JSON()}, "surrounding spaces"},
		{"builtin json", namedSerializer{name: "json", Serializer: Gob()}, `"json" is already registered`},
		{"builtin gob", namedSerializer{name: "gob", Serializer: JSON()}, `"gob" is already registered`},
		{"again", custom, fmt.Sprintf("%q is already registered", name)},
	}
	for _, tt := range tests {
		err := RegisterSerializer(tt.s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: RegisterSerializer err = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	// Failed registrations changed nothing.
	if s, _ := LookupSerializer("json"); s.Name() != "json" || reflect.TypeOf(s) != reflect.TypeOf(JSON()) {
		t.Errorf("json serializer replaced by %T", s)
	}
}

func TestGobCannotEncodeNil(t *testing.T) {
	t.Parallel()
	// Documented limitation: a task returning a nil pointer cannot be
	// checkpointed with gob; JSON writes null.
	var p *point
	for _, v := range []any{p, nil} {
		if _, err := Gob().Marshal(v); err == nil {
			t.Errorf("gob Marshal(%#v) succeeded", v)
		}
	}
	// Nil and empty slices and maps encode, and come back empty.
	for _, v := range []any{map[string]int(nil), []int(nil), []int{}, map[string]int{}} {
		data, err := Gob().Marshal(v)
		if err != nil {
			t.Errorf("gob Marshal(%#v): %v", v, err)
			continue
		}
		back := reflect.New(reflect.TypeOf(v))
		if err := Gob().Unmarshal(data, back.Interface()); err != nil || back.Elem().Len() != 0 {
			t.Errorf("gob round trip of %#v = %#v, %v", v, back.Elem().Interface(), err)
		}
	}
	data, err := JSON().Marshal(p)
	if err != nil || string(data) != "null" {
		t.Errorf("json Marshal(nil pointer) = %q, %v", data, err)
	}
	var back *point
	if err := JSON().Unmarshal(data, &back); err != nil || back != nil {
		t.Errorf("json Unmarshal(null) = %v, %v", back, err)
	}
}
