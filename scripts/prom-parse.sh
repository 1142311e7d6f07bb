#!/usr/bin/env bash
# Parses OpenMetrics text (stdin, what /metrics serves) with the Prometheus Python
# client's strict OpenMetrics parser, installed once into a virtualenv under the cache;
# prints each metric family as `name type samples` and each sample's name once, or fails
# with the parser's error. With --install, only installs.
set -euo pipefail
venv="${ADSTREAM_CACHE:-$HOME/.cache/adstream}/prom-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import prometheus_client" 2>/dev/null; then
    echo "prom-parse: installing prometheus-client (pip) into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q prometheus-client >&2
fi
[ "${1:-}" = "--install" ] && exit 0
exec "$venv/bin/python" -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
names = set()
for f in text_string_to_metric_families(sys.stdin.read()):
    print(f.name, f.type, len(f.samples))
    names.update(s.name for s in f.samples)
for n in sorted(names):
    print(n)
'
