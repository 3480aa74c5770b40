#!/usr/bin/env bash
# The whole test suite: the xunit tests (C#), then the PyTorch parity check of export-scripts/ (needs Debian's
# python3-torch; .ci/setup.sh installs it). Prints one closing line 'N passed, N failed, N skipped'.
set -uo pipefail
cd "$(dirname "$0")"
log=$(mktemp)
dotnet test FeatureOnnx.sln -c Release --logger "console;verbosity=normal" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E "^(Passed|Failed)!" "$log" | tail -1)
passed=$(sed -n 's/.*Passed: *\([0-9]*\).*/\1/p' <<<"$summary"); failed=$(sed -n 's/.*Failed: *\([0-9]*\).*/\1/p' <<<"$summary")
skipped=$(sed -n 's/.*Skipped: *\([0-9]*\).*/\1/p' <<<"$summary")
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
if [ -x export-scripts/parity_check.sh ]; then
  if export-scripts/parity_check.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
fi
rm -f "$log"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
