package result

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Serializer turns results into bytes and back.
type Serializer interface {
	// Name identifies the serializer in flow specs; it is unique within a
	// program.
	Name() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which is a pointer.
	Unmarshal(data []byte, v any) error
}

// DefaultSerializer is the name of the serializer used when none is named.
const DefaultSerializer = "json"

type jsonSerializer struct{}

// JSON returns the serializer named "json", the default. It uses
// encoding/json, so results round-trip through their JSON form: unexported
// fields are dropped and, decoded into an any, numbers become float64.
func JSON() Serializer { return jsonSerializer{} }

func (jsonSerializer) Name() string { return "json" }

func (jsonSerializer) Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json serializer: %w", err)
	}
	return data, nil
}

func (jsonSerializer) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("json serializer: %w", err)
	}
	return nil
}

type gobSerializer struct{}

// Gob returns the serializer named "gob". It uses encoding/gob: it cannot
// encode a nil value, interface-typed fields need gob.Register, and empty
// slices and maps decode as nil.
func Gob() Serializer { return gobSerializer{} }

func (gobSerializer) Name() string { return "gob" }

func (gobSerializer) Marshal(v any) ([]byte, error) {
	// gob panics, rather than failing, on a nil pointer.
	if rv := reflect.ValueOf(v); !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil() {
		return nil, fmt.Errorf("gob serializer: cannot encode nil %T; return a non-nil value or use the json serializer", v)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("gob serializer: %w", err)
	}
	return buf.Bytes(), nil
}

func (gobSerializer) Unmarshal(data []byte, v any) error {
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(v); err != nil {
		return fmt.Errorf("gob serializer: %w", err)
	}
	return nil
}

var serializers = struct {
	mu     sync.RWMutex
	byName map[string]Serializer
}{byName: map[string]Serializer{"json": JSON(), "gob": Gob()}}

// RegisterSerializer makes s available to [LookupSerializer] under s.Name().
// It fails for a nil serializer, an empty name or one with surrounding
// spaces, and a name already registered (json and gob are built in).
func RegisterSerializer(s Serializer) error {
	if s == nil {
		return errors.New("register result serializer: serializer is nil")
	}
	name := s.Name()
	if name == "" {
		return fmt.Errorf("register result serializer %T: Name() is empty", s)
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("register result serializer %T: name %q has surrounding spaces", s, name)
	}
	serializers.mu.Lock()
	defer serializers.mu.Unlock()
	if prev, ok := serializers.byName[name]; ok {
		return fmt.Errorf("register result serializer %T: name %q is already registered by %T; pick another name", s, name, prev)
	}
	serializers.byName[name] = s
	return nil
}

// LookupSerializer returns the serializer registered under name; "" means
// [DefaultSerializer].
func LookupSerializer(name string) (Serializer, error) {
	if name == "" {
		name = DefaultSerializer
	}
	serializers.mu.RLock()
	defer serializers.mu.RUnlock()
	if s, ok := serializers.byName[name]; ok {
		return s, nil
	}
	names := make([]string, 0, len(serializers.byName))
	for n := range serializers.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("unknown result serializer %q (registered: %s); call reeve.RegisterSerializer before the flow runs to add it", name, strings.Join(names, ", "))
}
