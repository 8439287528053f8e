#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Description: pair-setup.sh for a real box: --dry-run reports the NIC, prints every action and
# changes nothing; a real run makes the pair's key (first box), uses it as it is (second box) and
# writes the config that attach then reads.
source "$(dirname "$0")/../lib.sh"
require_root
pair_up p
cfg=$WORK/eth.conf key=$WORK/eth.key
args=(--role primary --dev "$P" --disk "$XM_PRIMARY_DISK" --peer "$XM_SECONDARY_MAC" --xdpmirror "$XM"
	--auth-key "$key")

out=$(ip netns exec "$XM_PRIMARY_NS" "$PAIR" "${args[@]}" --mtu 4000 --config "$cfg" --dry-run 2>&1) ||
	fail "dry run failed: $out"
grep -q "would: ip link set dev $P mtu 4000" <<<"$out" || fail "dry run did not show the MTU step: $out"
grep -q "would: write $cfg" <<<"$out" || fail "dry run did not show the config: $out"
grep -qE "native XDP +yes" <<<"$out" || fail "dry run did not check XDP: $out"
grep -q "would: xdpmirror keygen $key" <<<"$out" || fail "dry run did not show the key step: $out"
[ ! -e "$cfg" ] || fail "dry run wrote the config"
log "--install-unit: the unit make install puts in place, or the same from the source tree"
out=$(ip netns exec "$XM_PRIMARY_NS" "$PAIR" "${args[@]}" --config "$cfg" --install-unit --dry-run 2>&1) ||
	fail "dry run with --install-unit failed: $out"
if ! grep -q "using the installed unit" <<<"$out"; then
	grep -q "would: write /etc/systemd/system/xdpmirror@.service" <<<"$out" || fail "no unit step: $out"
	grep -qx "    ExecStart=$XM attach --config /etc/xdpmirror/%I.conf" <<<"$out" ||
		fail "the unit does not run $XM: $out"
	grep -qx "    Type=notify" <<<"$out" || fail "the unit is not the shipped one: $out"
fi
[ ! -e "$key" ] || fail "dry run made a key"
assert_eq "$(ip -n "$XM_PRIMARY_NS" -j link show dev "$P" | jq '.[0].mtu')" "$XM_MTU" "MTU after dry run"

ip netns exec "$XM_PRIMARY_NS" "$PAIR" "${args[@]}" --mtu 4000 --config "$cfg" >/dev/null || fail "real run failed"
assert_eq "$(ip -n "$XM_PRIMARY_NS" -j link show dev "$P" | jq '.[0].mtu')" 4000 "MTU after real run"
grep -qx "peer = $XM_SECONDARY_MAC" "$cfg" || fail "config lacks the peer: $(cat "$cfg")"
grep -qx "auth-key = $key" "$cfg" || fail "config lacks the key: $(cat "$cfg")"
assert_eq "$(stat -c '%a %s' "$key")" "600 32" "the key's mode and size"
sum=$(sha256sum <"$key")
out=$(ip netns exec "$XM_PRIMARY_NS" "$PAIR" "${args[@]}" --config "$cfg" 2>&1) || fail "second run: $out"
grep -q "using the key in $key" <<<"$out" || fail "second run did not reuse the key: $out"
assert_eq "$(sha256sum <"$key")" "$sum" "a key that exists is never replaced"

log "the config written by pair-setup is what attach --config reads"
in_box primary "$XM" attach --config "$cfg" --meta "$(box_meta primary)" --daemon || fail "attach --config $cfg"
assert_eq "$(status_json "$P" | jq -r .daemon.role)" primary "role from the config file"
assert_eq "$(status_json "$P" | jq -r .daemon.mtu)" 4000 "MTU seen by the daemon"
"$XM" detach --dev "$P" || fail "detach"

out=$("$PAIR" --role primary --dev nosuchif0 --disk "$XM_PRIMARY_DISK" --peer "$XM_SECONDARY_MAC" --dry-run 2>&1)
[ $? -ne 0 ] || fail "pair-setup accepted a missing interface"
grep -q "'nosuchif0': no such interface" <<<"$out" || fail "missing interface said: $out"
echo "all checks passed"
