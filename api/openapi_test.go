package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

var update = flag.Bool("update", false, "rewrite openapi.json from the route table")

// TestOpenAPIIsCurrent checks that openapi.json is what the route table and
// the wire types make; run go test ./api -update after changing either.
func TestOpenAPIIsCurrent(t *testing.T) {
	got, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, api.OpenAPI) {
		t.Fatal("openapi.json is out of date with api.Routes or the wire types: run go test ./api -update and commit it")
	}
}

// TestRoutesAreWellFormed checks the route table's own rules.
func TestRoutesAreWellFormed(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	pathSeg := regexp.MustCompile(`^([a-z_]+|\{[a-z_]+\})$`)
	restSeg := regexp.MustCompile(`^\{[a-z_]+\.\.\.\}$`)
	for _, rt := range api.Routes {
		key := rt.Method + " " + rt.Path
		if seen[key] {
			t.Errorf("%s is in the table twice", key)
		}
		seen[key] = true
		segs := strings.Split(strings.TrimPrefix(rt.Path, "/"), "/")
		for i, seg := range segs {
			if i == len(segs)-1 && restSeg.MatchString(seg) {
				continue // {name...}: the rest of the path
			}
			if !pathSeg.MatchString(seg) {
				t.Errorf("%s: path segment %q is not plural snake_case or a {param}", key, seg)
			}
		}
		if len(rt.Roles) == 0 && !rt.RunScoped {
			t.Errorf("%s: no role may call it", key)
		}
		if rt.Summary == "" {
			t.Errorf("%s has no summary", key)
		}
		if (rt.Method == "GET" || rt.Method == "DELETE") && rt.Request != nil {
			t.Errorf("%s takes a body", key)
		}
	}
}

func generate() ([]byte, error) {
	g := &gen{schemas: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, rt := range api.Routes {
		// OpenAPI has no {name...}: the rest of the path is {name}, a
		// parameter that may hold "/".
		path := api.Prefix + strings.ReplaceAll(rt.Path, "...}", "}")
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		op := map[string]any{"summary": rt.Summary, "operationId": opID(rt)}
		var params []any
		for _, m := range regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`).FindAllStringSubmatch(rt.Path, -1) {
			p := map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}}
			if m[2] != "" {
				p["description"] = "the rest of the path: may hold \"/\""
			}
			params = append(params, p)
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Request))},
			}}
		}
		roles := slices.Clone(rt.Roles)
		if rt.RunScoped {
			roles = append(roles, "run (own flow run only)")
		}
		op["x-roles"] = roles
		status := rt.Status
		if status == 0 {
			status = 200
		}
		responses := map[string]any{}
		if rt.Response == nil {
			responses[fmt.Sprint(status)] = map[string]any{"description": http.StatusText(status)}
		} else {
			content := map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Response))}}
			if rt.Stream {
				content["text/event-stream"] = map[string]any{"schema": map[string]any{"type": "string", "description": "events: log (data: LogLine), end (data: FlowRun), error (data: ErrorDetail)"}}
			}
			responses[fmt.Sprint(status)] = map[string]any{"description": http.StatusText(status), "content": content}
		}
		if strings.HasSuffix(rt.Path, "/claim") {
			responses["204"] = map[string]any{"description": "nothing to claim before the wait ended"}
		}
		responses["default"] = map[string]any{"description": "an error", "content": map[string]any{
			"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(api.ErrorBody{}))},
		}}
		op["responses"] = responses
		paths[path][strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Reeve API",
			"version":     "v1",
			"description": "The Reeve server's API. Send an API token as \"Authorization: Bearer <token>\"; x-roles lists the token roles that may call each operation.",
		},
		"paths":      paths,
		"components": map[string]any{"schemas": g.schemas, "securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
		"security":   []any{map[string]any{"bearer": []any{}}},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func opID(rt api.Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, seg := range strings.Split(rt.Path, "/") {
		seg = strings.TrimSuffix(strings.Trim(seg, "{}"), "...")
		for _, part := range strings.Split(seg, "_") {
			if part != "" {
				b.WriteString(strings.ToUpper(part[:1]) + part[1:])
			}
		}
	}
	return b.String()
}

type gen struct{ schemas map[string]any }

var (
	timeType     = reflect.TypeOf(time.Time{})
	rawType      = reflect.TypeOf(json.RawMessage{})
	durationType = reflect.TypeOf(api.Duration(0))
	kindType     = reflect.TypeOf(state.Kind(0))
)

// schema returns the JSON schema of t, naming struct types in components.
func (g *gen) schema(t reflect.Type) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case rawType:
		return map[string]any{"description": "any JSON value"}
	case durationType:
		return map[string]any{"type": "string", "description": "a Go duration, e.g. 15m"}
	case kindType:
		var names []string
		for _, k := range state.Kinds() {
			names = append(names, k.String())
		}
		return map[string]any{"type": "string", "enum": names}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "format": "byte", "description": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		if t.PkgPath() != "github.com/reevehq/reeve/api" {
			name = strings.ToUpper(t.Name()[:1]) + t.Name()[1:]
			if t == reflect.TypeOf(state.State{}) {
				name = "State"
			}
		}
		ref := map[string]any{"$ref": "#/components/schemas/" + name}
		if _, ok := g.schemas[name]; ok {
			return ref
		}
		g.schemas[name] = nil // placeholder against recursion
		props := map[string]any{}
		var required []string
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			fname, opts, _ := strings.Cut(tag, ",")
			if fname == "-" {
				continue
			}
			if fname == "" {
				fname = f.Name
			}
			props[fname] = g.schema(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, fname)
			}
		}
		sc := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if required != nil {
			sc["required"] = required
		}
		g.schemas[name] = sc
		return ref
	}
	return map[string]any{}
}
