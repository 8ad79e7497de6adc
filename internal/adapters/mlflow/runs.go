package mlflow

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/tidygate/tidygate/internal/domain"
)

// runUUID returns the run id of a call: 32 hex digits derived from its
// request id, so that delivering a record twice writes the same run.
func runUUID(requestID string) string {
	h := sha256.Sum256([]byte("tidygate run " + requestID))
	return hex.EncodeToString(h[:16])
}

// addRun appends the rows of c's run to b, as MLflow's tracking store would
// write a finished run: the run itself, its system and tidygate tags, the
// call's parameters and its metrics at step 0 (in metrics and latest_metrics).
// No prompt or response text goes into a run.
func (b *rows) addRun(c call, exp experiment) {
	r := c.rec
	id := runUUID(r.RequestID)
	status := "FINISHED"
	if r.Outcome != domain.OutcomeOK {
		status = "FAILED"
	}
	name := truncate(r.RequestID, 250)
	b.runs = append(b.runs, runRow{
		RunUUID: id, Name: name, SourceType: "UNKNOWN", UserID: truncate(r.User, 256), Status: status,
		StartTime: r.Start.UnixMilli(), EndTime: r.End.UnixMilli(), LifecycleStage: "active",
		ArtifactURI: truncate(exp.artifactLocation+"/"+id+"/artifacts", 200), ExperimentID: exp.id,
	})

	tag := func(key, value string) {
		if value != "" {
			b.runTags = append(b.runTags, keyValueRow{Key: key, Value: truncate(value, maxTagValue), RunUUID: id})
		}
	}
	tag("mlflow.runName", name)
	tag("mlflow.user", r.User)
	tag("mlflow.source.name", "tidygate")
	tag("mlflow.source.type", "LOCAL")
	tag("tidygate.request_id", r.RequestID)
	tag("tidygate.outcome", string(r.Outcome))
	if r.Outcome != domain.OutcomeOK {
		tag("tidygate.error_kind", r.ErrorKind.String())
	}
	tag("tidygate.error", r.ErrorMessage)
	tag("tidygate.interrupted", string(r.Interrupted))
	if r.UsageExceedsReservation {
		tag("tidygate.usage_exceeds_reservation", "true")
	}

	param := func(key, value string) {
		if value != "" {
			b.params = append(b.params, keyValueRow{Key: key, Value: truncate(value, maxParam), RunUUID: id})
		}
	}
	param("model", modelOf(r))
	param("provider", r.Provider)
	param("user", r.User)
	param("team", r.Team)
	param("reason", r.AuditReason)
	param("endpoint", string(r.Endpoint))
	for _, f := range []struct {
		key   string
		value *float64
	}{{"temperature", r.Temperature}, {"presence_penalty", r.PresencePenalty}, {"frequency_penalty", r.FrequencyPenalty}} {
		if f.value != nil {
			param(f.key, strconv.FormatFloat(*f.value, 'g', -1, 64))
		}
	}
	if r.Seed != nil {
		param("seed", strconv.FormatInt(*r.Seed, 10))
	}
	if r.MaxTokens > 0 {
		param("max_tokens", strconv.Itoa(r.MaxTokens))
	}

	at := r.End.UnixMilli()
	for _, m := range []struct {
		key   string
		value float64
	}{
		{"latency_ms", float64(r.Duration().Microseconds()) / 1000},
		{"prompt_tokens", float64(r.Usage.PromptTokens)},
		{"completion_tokens", float64(r.Usage.CompletionTokens)},
		{"total_tokens", float64(r.Usage.Total())},
		{"cost_usd", r.Cost().USD()},
	} {
		// The values are finite, so none is stored as MLflow stores NaN.
		row := metricRow{Key: m.key, Value: m.value, Timestamp: at, Step: 0, RunUUID: id}
		b.metrics = append(b.metrics, row)
		b.latest = append(b.latest, row)
	}
}
