# Sourced by setup.sh: apt_wait <apt-get args…> runs apt-get, and while another process
# (unattended-upgrades, a parallel setup) holds apt's locks, waits and retries instead of failing
# at once, up to APT_LOCK_TIMEOUT seconds (default 600). Needs $SUDO (may be empty) and log().
APT_LOCK_TIMEOUT="${APT_LOCK_TIMEOUT:-600}"
APT_LOCK_POLL="${APT_LOCK_POLL:-5}"
apt_wait() {
  local deadline=$((SECONDS + APT_LOCK_TIMEOUT)) out rc
  while :; do
    rc=0
    out="$($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" "$@" 2>&1)" || rc=$?
    if ((rc == 0)); then return 0; fi
    if grep -qE 'Could not get lock|Unable to lock|is another process using it' <<<"$out" && ((SECONDS < deadline)); then
      log "apt is locked by another process; waiting ($((deadline - SECONDS)) s left)"
      sleep "$APT_LOCK_POLL"
      continue
    fi
    printf '%s\n' "$out" >&2
    return "$rc"
  done
}
