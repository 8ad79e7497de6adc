package gemini

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/tidygate/tidygate/internal/adapters/llm"
)

// vertexScope is the OAuth 2 scope a Vertex AI access token is asked for.
const vertexScope = "https://www.googleapis.com/auth/cloud-platform"

// VertexOptions configures the Vertex AI adapter.
type VertexOptions struct {
	// Project is the Google Cloud project's id; it is required.
	Project string
	// Location is the region (us-central1, europe-west4, …) or global; it
	// is required.
	Location string
	// CredentialsFile is the path of a service account's JSON key file;
	// it is required. The key signs a JWT-bearer grant, exchanged for an
	// access token at the file's token_uri.
	CredentialsFile string
	// BaseURL is the API's base URL, its version included; empty means
	// https://{location}-aiplatform.googleapis.com/v1
	// (https://aiplatform.googleapis.com/v1 for global).
	BaseURL string
	// HTTPClient carries the calls and the token exchanges; nil means
	// llm.NewHTTPClient's.
	HTTPClient *http.Client
	// Timeout bounds each call, a stream included; zero means
	// llm.DefaultTimeout.
	Timeout time.Duration
}

// ValidLocation reports whether location can be a Google Cloud location
// (lower-case letters, digits and dashes), which becomes part of the API's
// host name.
func ValidLocation(location string) bool {
	if location == "" || len(location) > 63 {
		return false
	}
	for _, r := range location {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// NewVertex returns an adapter for Vertex AI's Google models, or an error
// if a setting is missing, the credentials file cannot be read or is not a
// service account's key, the base URL is not an absolute http or https URL
// or the timeout is negative. Access tokens are fetched when first needed
// and cached until shortly before they expire.
func NewVertex(opts VertexOptions) (*Provider, error) {
	if opts.Project == "" || opts.Location == "" || opts.CredentialsFile == "" {
		return nil, errors.New("vertex: the project, the location and a service account's credentials file are required")
	}
	if !ValidLocation(opts.Location) {
		return nil, fmt.Errorf("vertex: location %q is not a Google Cloud region such as us-central1, or global", opts.Location)
	}
	key, err := os.ReadFile(opts.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("vertex: reading the credentials file: %w", err)
	}
	cfg, err := google.JWTConfigFromJSON(key, vertexScope)
	if err != nil {
		return nil, fmt.Errorf("vertex: the credentials file %s is not a service account's JSON key: %w", opts.CredentialsFile, err)
	}
	host := opts.Location + "-aiplatform.googleapis.com"
	if opts.Location == "global" {
		host = "aiplatform.googleapis.com"
	}
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("vertex", "https://"+host+"/v1")
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(ep.BaseURL, "/") + "/projects/" + url.PathEscape(opts.Project) +
		"/locations/" + url.PathEscape(opts.Location) + "/publishers/google/models/"
	tokens := llm.NewTokens("vertex", ep.HTTPClient, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.TokenSource(ctx).Token()
	})
	return newProvider("vertex", "", ep, base, tokens.Authorize, predictEmbed), nil
}
