package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the API, generated from Routes and
// the wire types (go test ./api -update rewrites it; a test fails when it is
// out of date). The server serves it at /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
