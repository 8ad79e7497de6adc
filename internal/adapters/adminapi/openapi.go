package adminapi

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the admin API's OpenAPI 3 description.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the admin API's OpenAPI 3 document.
func OpenAPIDocument() []byte { return openAPIDocument }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}
