#!/usr/bin/env bash
# make e2e: coding agents through tidygate. Installs the pinned agents from
# the npm registry into e2e/node_modules, starts tidygate (mock provider,
# a fresh database on the local PostgreSQL), runs Claude Code and Codex
# non-interactively through it, and checks the agents' output and that
# every call they made is in MLflow's tables with its audit reason and usage.
#
#   E2E_DATABASE_URL  the server to create the throwaway database on
#                     (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   E2E_PORT          tidygate's port (default 18480)
#   E2E_TIMEOUT       bound on each agent run, in seconds (default 180)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
base_url=${E2E_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
port=${E2E_PORT:-18480}
agent_timeout=${E2E_TIMEOUT:-180}
key=tg-dev-local-only-0000000000000000
reason="e2e: claude code through tidygate"
codex_reason="e2e: codex through tidygate"

fail() { echo "e2e FAILED: $*" >&2; exit 1; }

command -v node >/dev/null || fail "node is missing (Node 20 or newer)"
command -v psql >/dev/null || fail "psql is missing"

echo "== agents from npm (pinned in e2e/package.json)"
if [ ! -x e2e/node_modules/.bin/claude ] || [ ! -x e2e/node_modules/.bin/codex ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
	(cd e2e && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
fi
claude=$root/e2e/node_modules/.bin/claude
codex=$root/e2e/node_modules/.bin/codex
timeout 60 "$claude" --version
timeout 60 "$codex" --version

echo "== tidygate"
make -s build
work=$(mktemp -d "${TMPDIR:-/tmp}/tidygate-e2e.XXXXXX")
db=tidygate_e2e_$$
db_url=${base_url/\/postgres\?/\/$db?}
tg_pid=
cleanup() {
	if [ -n "$tg_pid" ]; then kill "$tg_pid" 2>/dev/null && wait "$tg_pid" 2>/dev/null || true; fi
	psql "$base_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
psql "$base_url" -qc "CREATE DATABASE $db" >/dev/null
DATABASE_URL=$db_url HTTP_ADDR=127.0.0.1:$port ADMIN_ADDR=off CATALOGUE_FILE=e2e/catalogue.yaml \
	MLFLOW_JOURNAL_DIR=$work/journal MLFLOW_WRITER_FLUSH_INTERVAL=50ms \
	bin/tidygate serve --dev-key >"$work/tidygate.log" 2>&1 &
tg_pid=$!
for _ in $(seq 1 60); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$tg_pid" 2>/dev/null || { cat "$work/tidygate.log"; fail "tidygate did not start"; }
	sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/tidygate.log"; fail "tidygate is not ready"; }

# Claude Code: a throwaway HOME, no telemetry or update checks, the key as
# x-api-key, the audit reason as a custom header.
mkdir -p "$work/home" "$work/project"
secret="pelican-$$"
echo "the secret word is $secret" >"$work/project/notes.txt"
run_claude() {
	(cd "$work/project" && env -i PATH="$PATH" HOME="$work/home" TERM=dumb \
		ANTHROPIC_BASE_URL="http://127.0.0.1:$port" ANTHROPIC_API_KEY=$key \
		ANTHROPIC_CUSTOM_HEADERS="X-Audit-Reason: $reason" \
		CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 \
		timeout "$agent_timeout" "$claude" -p "$1" --model mock-agent </dev/null 2>"$work/claude.err") ||
		{ cat "$work/claude.err" >&2; tail -20 "$work/tidygate.log" >&2; fail "claude -p exited with $?"; }
}

echo "== claude -p: a plain answer"
out=$(run_claude "Reply with [[say:hello from tidygate]]")
echo "claude printed: $out"
[ "$out" = "hello from tidygate" ] || fail "claude printed '$out', want 'hello from tidygate'"

echo "== claude -p: a tool loop (the mock calls Read, Claude Code runs it, the mock quotes the result)"
out=$(run_claude "What does notes.txt say? [[tool:Read {\"file_path\":\"$work/project/notes.txt\"}]]")
echo "claude printed: $out"
case $out in
*"Tool result:"*"the secret word is $secret"*) ;;
*) fail "claude printed '$out', want the file's content quoted from the tool result" ;;
esac

# Codex: a throwaway CODEX_HOME whose config.toml names tidygate as a
# Responses API provider, the key from TIDYGATE_API_KEY (sent as a Bearer
# token) and the audit reason from TIDYGATE_AUDIT_REASON as a header. Web
# search (a hosted tool) and sub-agents (a tool namespace) are off: tidygate
# serves function tools only and refuses the others by name.
mkdir -p "$work/codex-home"
cat >"$work/codex-home/config.toml" <<TOML
model = "mock-agent"
model_provider = "tidygate"
web_search = "disabled"

[agents]
enabled = false

[model_providers.tidygate]
name = "tidygate"
base_url = "http://127.0.0.1:$port/v1"
wire_api = "responses"
env_key = "TIDYGATE_API_KEY"
env_http_headers = { "X-Audit-Reason" = "TIDYGATE_AUDIT_REASON" }
TOML
run_codex() {
	(cd "$work/project" && env -i PATH="$PATH" HOME="$work/home" TERM=dumb CODEX_HOME="$work/codex-home" \
		TIDYGATE_API_KEY=$key TIDYGATE_AUDIT_REASON="$codex_reason" \
		timeout "$agent_timeout" "$codex" exec --skip-git-repo-check "$1" </dev/null 2>"$work/codex.err") ||
		{ cat "$work/codex.err" >&2; tail -20 "$work/tidygate.log" >&2; fail "codex exec exited with $?"; }
}

echo "== codex exec: a plain answer"
out=$(run_codex "Reply with [[say:hello from tidygate]]")
echo "codex printed: $out"
[ "$out" = "hello from tidygate" ] || fail "codex printed '$out', want 'hello from tidygate'"

echo "== codex exec: a tool loop (the mock calls exec_command, Codex runs it, the mock quotes the result)"
out=$(run_codex "What does notes.txt say? [[tool:exec_command {\"cmd\":\"cat notes.txt\"}]]")
echo "codex printed: $out"
case $out in
*"Tool result:"*"the secret word is $secret"*) ;;
*) fail "codex printed '$out', want the file's content quoted from the tool result" ;;
esac

echo "== every call recorded in MLflow's tables with its audit reason and usage"
sql() { psql "$db_url" -Atqc "$1"; }
want_calls=6 # per agent: one call for the answer, two for the tool loop
for _ in $(seq 1 40); do
	[ "$(sql "SELECT count(*) FROM trace_info")" -ge "$want_calls" ] && break
	sleep 0.25
done
traces=$(sql "SELECT count(*) FROM trace_info")
with_reason=$(sql "SELECT count(*) FROM trace_request_metadata WHERE key = 'tidygate.audit_reason' AND value = '$reason'")
with_codex_reason=$(sql "SELECT count(*) FROM trace_request_metadata WHERE key = 'tidygate.audit_reason' AND value = '$codex_reason'")
with_usage=$(sql "SELECT count(*) FROM trace_request_metadata WHERE key = 'mlflow.trace.tokenUsage'
	AND (value::json->>'input_tokens')::int > 0 AND (value::json->>'output_tokens')::int > 0")
ok=$(sql "SELECT count(*) FROM trace_info WHERE status = 'OK'")
echo "traces: $traces, with Claude Code's audit reason: $with_reason, with Codex's: $with_codex_reason, with usage: $with_usage, OK: $ok"
[ "$traces" -eq "$want_calls" ] || fail "$traces traces, want $want_calls (one per call the agents made)"
[ "$with_reason" -eq 3 ] || fail "$with_reason traces carry Claude Code's audit reason, want 3"
[ "$with_codex_reason" -eq 3 ] || fail "$with_codex_reason traces carry Codex's audit reason, want 3"
[ "$with_usage" -eq "$traces" ] || fail "only $with_usage of $traces traces carry token usage"
[ "$ok" -eq "$traces" ] || fail "only $ok of $traces traces succeeded"
spent=$(sql "SELECT coalesce(sum(requests), 0) FROM tidygate_usage")
[ "$spent" -eq "$traces" ] || fail "the ledger counts $spent requests, the call log $traces"
echo "e2e PASSED"
