#!/usr/bin/env bash
# Offline validation of the CDK app, as the test suite runs it:
#   npm ci → tsc → cdk synth (staging, prod) → requirement checks → cfn-lint → checkov
# No AWS account or credentials: every stack has a fixed account/region and cdk.json holds the
# availability zones, so synth makes no lookups. Exits non-zero on the first failure.
#
# Python tools: $CFN_LINT and $CHECKOV if set, else cfn-lint and checkov from PATH
# (pip install -r infra/requirements-lint.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

export CDK_DISABLE_VERSION_CHECK=1
export CDK_DISABLE_CLI_TELEMETRY=true
export CI=true
export AWS_EC2_METADATA_DISABLED=true   # never wait on the instance metadata service for credentials

CFN_LINT="${CFN_LINT:-cfn-lint}"
CHECKOV="${CHECKOV:-checkov}"
for tool in "$CFN_LINT" "$CHECKOV" npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "check.sh: $tool not found (set CFN_LINT / CHECKOV or put it on PATH)" >&2; exit 2; }
done

ENVS=(staging prod)
OUT=cdk.out
declare -a TIMINGS=()
step() { # step NAME COMMAND...
  local name=$1; shift
  local start; start=$(date +%s%N)
  echo "==> $name"
  if ! "$@"; then
    echo "check.sh: FAILED: $name" >&2
    exit 1
  fi
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  TIMINGS+=("$(printf '%-30s %4d.%01d s' "$name" $((ms / 1000)) $((ms % 1000 / 100)))")
}

npm_ci() { npm ci --no-audit --no-fund --loglevel=error; }
typecheck() { npx --no-install tsc --noEmit; }
synth() {
  local env
  for env in "${ENVS[@]}"; do
    rm -rf "$OUT/$env"
    npx --no-install cdk synth --quiet --no-notices -c "env=$env" -o "$OUT/$env"
  done
}
requirements() { npx --no-install ts-node --transpile-only test/requirements.ts "${ENVS[@]}"; }
lint() {
  # cfn-lint's exit status is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
  local rc=0
  "$CFN_LINT" "$OUT"/*/*.template.json || rc=$?
  if (( rc & 2 )) || (( rc & 1 )); then
    echo "cfn-lint reported errors (exit $rc)" >&2
    return 1
  fi
  (( rc == 0 )) || echo "cfn-lint: warnings/informational only (exit $rc)"
}
scan() {
  local env rc=0
  for env in "${ENVS[@]}"; do
    echo "--- checkov: $env"
    "$CHECKOV" -d "$OUT/$env" --framework cloudformation --config-file .checkov.yaml --quiet --compact || rc=1
  done
  return $rc
}
skips_documented() {
  # Every per-resource checkov skip in the templates must be listed, with its reason, in .checkov.yaml.
  node -e '
    const fs = require("fs"), path = require("path");
    const documented = new Set([...fs.readFileSync(".checkov.yaml", "utf8").matchAll(/^# documented-skip (CKV2?_[A-Z]+_\d+):/gm)].map((m) => m[1]));
    const found = new Map();
    for (const env of process.argv.slice(1)) {
      const dir = path.join("cdk.out", env);
      for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".template.json"))) {
        const t = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
        for (const [id, r] of Object.entries(t.Resources || {})) {
          for (const s of (r.Metadata && r.Metadata.checkov && r.Metadata.checkov.skip) || []) {
            if (!s.comment) { console.error(`${f} ${id}: skip of ${s.id} has no reason`); process.exitCode = 1; }
            found.set(s.id, (found.get(s.id) || 0) + 1);
          }
        }
      }
    }
    for (const [id, n] of found) {
      console.log(`  ${id}: skipped on ${n} resource(s)`);
      if (!documented.has(id)) { console.error(`${id} is skipped in a template but not documented in .checkov.yaml`); process.exitCode = 1; }
    }
  ' "${ENVS[@]}"
}

step "npm ci" npm_ci
step "tsc --noEmit" typecheck
step "cdk synth (${ENVS[*]})" synth
step "requirements (templates)" requirements
step "cfn-lint" lint
step "checkov" scan
step "checkov skips documented" skips_documented

echo
echo "check.sh: all checks passed"
printf '  %s\n' "${TIMINGS[@]}"
