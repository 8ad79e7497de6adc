package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"net/http"

	"github.com/tidygate/tidygate/internal/domain"
)

// embeddingListJSON is the OpenAI embeddings response.
type embeddingListJSON struct {
	Object string          `json:"object"`
	Data   []embeddingJSON `json:"data"`
	Model  string          `json:"model"`
	Usage  embedUsageJSON  `json:"usage"`
}

type embeddingJSON struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

type embedUsageJSON struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// embeddings serves POST /v1/embeddings.
func (h *handler) embeddings(w http.ResponseWriter, r *http.Request) {
	in, ok := decodeRequest(h, w, r, decodeEmbed)
	if !ok {
		return
	}
	ex := exchangeOf(r)
	res, err := h.gw.Embed(r.Context(), h.call(r), in.req)
	ex.waited(res.Result)
	if err == nil {
		err = checkVectors(res.Response.Vectors, in.req.Len(), in.base64)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	list := embeddingListJSON{Object: "list", Model: res.ModelName(in.req.Model), Data: make([]embeddingJSON, len(res.Response.Vectors)),
		Usage: embedUsageJSON{PromptTokens: res.Response.Usage.PromptTokens, TotalTokens: res.Response.Usage.Total()}}
	for i, v := range res.Response.Vectors {
		list.Data[i] = embeddingJSON{Object: "embedding", Index: i, Embedding: v}
		if in.base64 {
			list.Data[i].Embedding = base64Vector(v)
		}
	}
	setResultHeaders(w, res.Result, "")
	h.writeJSON(w, http.StatusOK, list)
}

// checkVectors refuses a provider answer the client cannot use: one vector
// per input is the contract, and JSON has no NaN or infinity.
func checkVectors(vectors [][]float32, inputs int, base64 bool) error {
	if len(vectors) != inputs {
		return &domain.Error{Kind: domain.KindUpstream, Code: "upstream_error",
			Message: "the provider returned a different number of vectors than inputs"}
	}
	if base64 {
		return nil
	}
	for _, v := range vectors {
		for _, f := range v {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return &domain.Error{Kind: domain.KindUpstream, Code: "upstream_error",
					Message: "the provider returned a vector with a value that is not a finite number"}
			}
		}
	}
	return nil
}

// base64Vector encodes v as OpenAI does for encoding_format "base64": the
// little-endian float32 values, base64-encoded.
func base64Vector(v []float32) string {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
