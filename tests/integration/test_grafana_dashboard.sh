#!/usr/bin/env bash
# Description: contrib/grafana/xdpmirror.json cannot rot: it is JSON Grafana imports (schema 36+,
# a Prometheus data source variable every panel uses, a device variable, 10-14 panels), and every
# metric name in every panel's PromQL and in the device variable's query is a family of
# docs/metrics.md and a sample a real attached pair writes, with the labels and label values the
# queries and legends use (tests/tools/dashboard_check.py).
# SPDX-License-Identifier: GPL-2.0
source "$(dirname "$0")/../lib.sh"
require_root
require_cmd nbdcopy jq
$PY -c 'import prometheus_client.parser' 2>/dev/null || skip "python3-prometheus-client missing (make deps)"
DASH=$TOP/contrib/grafana/xdpmirror.json

log "the dashboard is JSON Grafana can import"
jq empty "$DASH" || fail "$DASH does not parse"
shape() { jq -e "$1" "$DASH" >/dev/null || fail "$DASH: want $1"; }
shape '.schemaVersion >= 36'
shape '.templating.list | any(.name == "datasource" and .type == "datasource" and .query == "prometheus")'
shape '.templating.list | any(.name == "device" and .type == "query")'
shape '.panels | length >= 10 and length <= 14'
# Panels and their queries take the data source from the variable: an import asks for nothing,
# and a dashboard that names one installation's data source uid works nowhere else.
# shellcheck disable=SC2016 # jq's variable, not the shell's
shape '[.panels[] | .datasource, .targets[].datasource] | all(.uid == "${datasource}")'
shape '[.panels[].id] | length == (unique | length)'

pair_up gf --disk-size 16M
mirror_up
# Some writes and a flush, so the histograms and frame counters have samples of every kind.
random_file "$WORK/a.img" $((1 << 20))
nbdcopy --flush "$WORK/a.img" "$(nbd_uri)" || fail "nbdcopy"
for box in primary secondary; do
	"$XM" metrics --dev "$(box_if $box)" >"$WORK/$box.prom" || fail "metrics $box: exit $?"
	$PY "$TOP/tests/tools/prom_json.py" <"$WORK/$box.prom" >"$WORK/$box.json" || fail "$box.prom does not parse"
done

log "every metric the dashboard uses is documented and real"
$PY "$TOP/tests/tools/dashboard_check.py" "$DASH" "$TOP/docs/metrics.md" \
	"$WORK/primary.json" "$WORK/secondary.json" >"$WORK/used" || fail "the dashboard does not match the metrics"
# The checker found every xdpmirror_ name a plain grep finds, so none went unchecked.
jq -r '(.panels[].targets[].expr), (.templating.list[] | select(.type == "query") | .query.query // .query)' \
	"$DASH" | grep -o 'xdpmirror_[a-z0-9_]*' | sort -u >"$WORK/grepped"
diff "$WORK/grepped" "$WORK/used" || fail "the checker and grep disagree on the metric names used"
log "  $(wc -l <"$WORK/used") metric names, all documented and written by a real pair"

mirror_down
echo "all checks passed"
