#!/usr/bin/env bash
# Set up, build, demo and test budstikke on Debian 12.
#
#   deploy/dev.sh demo [--recipients N]   install what is missing, build, send a demo campaign
#   deploy/dev.sh test [--long]           install what is missing, build, run every test (ctest), fuzz 20 s each
#   deploy/dev.sh test --sanitize         the same suite built with AddressSanitizer + UBSan (build-sanitize/)
#   deploy/dev.sh test --tsan             the multi-shard scenarios against a ThreadSanitizer engine (build-tsan/)
#   deploy/dev.sh fuzz [--seconds N] [--update-corpus]   run the libFuzzer harnesses (clang) N seconds
#                                         each (default 300); keep what they found in tests/fuzz/corpus
#   deploy/dev.sh build | deps
#
# `test` ends with a fuzz run (--seconds, default 20 per harness, from tests/fuzz/corpus). --long
# scales the crash and fault scenarios up (more recipients, more kills) and takes several minutes more.
# Under --sanitize and --tsan a sanitizer report from any process (a test, the engine, a sink) fails
# the run: each report is written to a log directory that is checked at the end.
# --with-postfix also installs Debian's postfix for its smtp-sink/smtp-source test tools. It is
# opt-in because installing postfix installs a mail server (configured here as "No configuration",
# so it does not start); without it the tests that need smtp-sink are skipped and say so.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUDSTIKKE_BUILD_DIR:-$ROOT/build}
PACKAGES=(g++ cmake ninja-build pkg-config ccache libboost1.81-dev libboost-json1.81-dev libhiredis-dev
          libfmt-dev libyaml-cpp-dev catch2 libcli11-dev libssl-dev libidn2-dev libbenchmark-dev redis-server
          python3-aiosmtpd openssl libcurl4-openssl-dev libphonenumber-dev libicu-dev kannel
          gnuplot-nox python3-redis php-cli php-redis nodejs)

# The fuzz build uses clang and its libFuzzer runtime.
FUZZ_PACKAGES=(clang libclang-rt-14-dev)

usage() { sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[ -n "$cmd" ] || { usage; exit 2; }
shift
RECIPIENTS=20000
WITH_POSTFIX=0
SANITIZE=0
TSAN=0
FUZZ_SECONDS=
LONG=0
UPDATE_CORPUS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --recipients) RECIPIENTS=${2:?--recipients needs a number}; shift 2 ;;
    --with-postfix) WITH_POSTFIX=1; shift ;;
    --sanitize) SANITIZE=1; shift ;;
    --tsan) TSAN=1; shift ;;
    --seconds) FUZZ_SECONDS=${2:?--seconds needs a number}; shift 2 ;;
    --long) LONG=1; shift ;;
    --update-corpus) UPDATE_CORPUS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "dev.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# libphonenumber-dev depends on boost-defaults' libboost-thread-dev, i.e. Boost 1.74, which
# conflicts with the Boost 1.81 we build with; its headers need only Boost's header-only parts.
# A local, empty stand-in package points that dependency at libboost-thread1.81-dev instead.
boost_thread_stand_in() {
  dpkg-query -W -f='${Status}' libboost-thread-dev 2>/dev/null | grep -q "install ok installed" && return 0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libboost-thread1.81-dev
  local d
  d=$(mktemp -d)
  mkdir -p "$d/pkg/DEBIAN"
  printf '%s\n' "Package: libboost-thread-dev" "Version: 1.81.0.0~local1" "Architecture: all" \
    "Maintainer: budstikke dev.sh <root@localhost>" "Depends: libboost-thread1.81-dev" "Section: libdevel" \
    "Priority: optional" "Description: stand-in for boost-defaults' libboost-thread-dev, on Boost 1.81" \
    " Lets libphonenumber-dev install next to libboost1.81-dev (budstikke deploy/dev.sh)." > "$d/pkg/DEBIAN/control"
  dpkg-deb --build --root-owner-group "$d/pkg" "$d/libboost-thread-dev.deb" >/dev/null
  as_root dpkg -i "$d/libboost-thread-dev.deb"
  rm -rf "$d"
}

install_deps() {
  local want=("${PACKAGES[@]}" "${FUZZ_PACKAGES[@]}") missing=()
  [ "$WITH_POSTFIX" -eq 1 ] && want+=(postfix)
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}"
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  fi
  as_root apt-get update -q
  [[ " ${missing[*]} " == *" libphonenumber-dev "* ]] && boost_thread_stand_in
  # Kannel is only a test peer: like postfix, no service may start (or start at boot) on this machine.
  local guard=0
  if [[ " ${missing[*]} " == *" kannel "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    guard=1
  fi
  local ok=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" || ok=$?
  [ "$guard" -eq 1 ] && as_root rm -f /usr/sbin/policy-rc.d
  [ "$ok" -eq 0 ] || return "$ok"
  if [[ " ${missing[*]} " == *" kannel "* ]]; then as_root update-rc.d kannel disable >/dev/null 2>&1 || true; fi
}

# The normal tree ($BUILD): everything, tests included; or only the targets named (the demo
# needs the engine alone, and a new user should not wait for the tests).
build() {
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" "${targets[@]}"
}

# A sanitizer tree ($2) with the engine and the unit tests only: the integration tests of the
# normal tree drive its engine through BUDSTIKKE_BIN, so they are not compiled twice.
build_sanitized() {
  local kind=$1 dir=$2 targets=()
  [ "$kind" = thread ] && targets=(--target budstikke)
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUDSTIKKE_SANITIZE="$kind" \
    -DBUDSTIKKE_INTEGRATION_TESTS=OFF >/dev/null
  cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
}

# Sanitizer reports go to files in $1 (one per process), so that a report from a child process
# whose output nobody reads (an engine, a sink) still fails the run.
sanitizer_env() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  export ASAN_OPTIONS="abort_on_error=1:halt_on_error=1:detect_leaks=1:log_path=$dir/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$dir/ubsan"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$dir/tsan"
}

# Fails when any process wrote a sanitizer report.
check_sanitizer_reports() {
  local dir=$1 reports
  reports=$(find "$dir" -type f -size +0 2>/dev/null | sort)
  if [ -n "$reports" ]; then
    echo "dev.sh: sanitizer reports:" >&2
    for f in $reports; do echo "== $f" >&2; head -60 "$f" >&2; done
    return 1
  fi
  echo "dev.sh: no sanitizer report from any process"
}

# Every integration scenario (they start the engine and the sinks as child processes).
INTEGRATION_TESTS='^(e2e|scripts)'

# The multi-shard scenarios (every fixture engine runs two shards) that together exercise each
# object shared between threads: rate limiters, metrics and the admin server, the SMS gateway's
# back-off, the stop flag (SIGTERM mid-campaign), pause/resume, /unsubscribe. Scenarios whose
# assertions are about timing (a domain's or tenant's share of a second) are left out: an engine
# under ThreadSanitizer runs several times slower and bunches its sends.
TSAN_SCENARIOS='^e2e.*(admin port|20,000 recipients|SIGTERM|kill -9|sms: 10 %|sms: 500s|retry sms|pause stops|one-click unsubscribe|urgent|global limit|SMS gateway limit)'

# ASan + UBSan: the unit tests in-process, the integration scenarios against the sanitized engine.
sanitized_suite() {
  local dir=${BUDSTIKKE_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize} ok=0
  build
  build_sanitized address "$dir"
  sanitizer_env "$dir/sanitizer-reports"
  export BUDSTIKKE_SANITIZED=address
  ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 1800 || ok=$?
  BUDSTIKKE_BIN="$dir/budstikke" ctest --test-dir "$BUILD" --output-on-failure -j 2 --timeout 1800 \
    -R "$INTEGRATION_TESTS" || ok=$?
  check_sanitizer_reports "$dir/sanitizer-reports" || ok=1
  return "$ok"
}

# TSan: the multi-shard scenarios against an engine built with ThreadSanitizer.
tsan_suite() {
  local dir=${BUDSTIKKE_TSAN_BUILD_DIR:-$ROOT/build-tsan} ok=0
  build
  build_sanitized thread "$dir"
  sanitizer_env "$dir/sanitizer-reports"
  export BUDSTIKKE_SANITIZED=thread
  BUDSTIKKE_BIN="$dir/budstikke" ctest --test-dir "$BUILD" --output-on-failure -j 2 --timeout 1800 \
    -R "$TSAN_SCENARIOS" || ok=$?
  check_sanitizer_reports "$dir/sanitizer-reports" || ok=1
  return "$ok"
}

fuzz() {
  local seconds=$1 dir=${BUDSTIKKE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$dir" -G Ninja -DBUDSTIKKE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUDSTIKKE_FUZZ_SECONDS="$seconds" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
  # Each harness prints its executions (stat::number_of_executed_units) at the end.
  ctest --test-dir "$dir" --output-on-failure -j 2
  if [ "$UPDATE_CORPUS" -eq 1 ]; then
    # Keeps what the run found in the repository's corpus, minimised (only inputs that add coverage).
    local h
    for h in "$dir"/tests/fuzz/fuzz_*; do
      local name=${h##*/fuzz_} kept="$ROOT/tests/fuzz/corpus/${h##*/fuzz_}"
      mkdir -p "$kept"
      "$h" -merge=1 "$kept" "$dir/tests/fuzz/corpus/$name" >/dev/null 2>&1
      echo "dev.sh: tests/fuzz/corpus/$name: $(find "$kept" -type f | wc -l) inputs"
    done
  fi
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "dev.sh: no free port found" >&2; return 1
}

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "dev.sh: nothing listens on 127.0.0.1:$1" >&2; return 1
}

# What the demo started and where, global: its EXIT trap runs after demo() has returned.
DEMO_WORK=""
DEMO_PIDS=()
demo_cleanup() {
  local p
  for p in "${DEMO_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${DEMO_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$DEMO_WORK" ]; then rm -rf "$DEMO_WORK"; fi
}

demo() {
  local bin="$BUILD/budstikke" work
  work=$(mktemp -d /tmp/budstikke-demo-XXXXXX)
  DEMO_WORK=$work
  trap demo_cleanup EXIT

  local redis_port sink_port
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" & DEMO_PIDS+=($!)
  sink_port=$(free_port)
  "$bin" sink smtp --listen "127.0.0.1:$sink_port" >"$work/sink.log" 2>&1 & DEMO_PIDS+=($!)
  wait_port "$redis_port"
  wait_port "$sink_port"
  echo "redis-server on 127.0.0.1:$redis_port, SMTP sink on 127.0.0.1:$sink_port"

  # Synthetic members of a Norwegian union, names with æøå.
  awk -v n="$RECIPIENTS" 'BEGIN {
    split("Åse Ørjan Kari Håkon Bjørg Ola Sølvi Æsa Jørgen Tove Øystein Mari", f, " ");
    split("Hansen Sæther Nordmann Løvås Bråthen Aas Østby Dæhli Ødegård Strøm", l, " ");
    split("Oslo Tromsø Bodø Førde Ålesund Kristiansand Hønefoss Mosjøen", b, " ");
    for (i = 1; i <= n; i++)
      printf "{\"to\":\"medlem%d@avd%d.example\",\"id\":\"M%07d\",\"name\":\"%s %s\",\"branch\":\"%s\",\"dues_paid\":%s,\"items\":[\"Lønnstillegg 5,2 %%\",\"Uravstemning åpner mandag\"]}\n",
        i, i % 40, i, f[1 + i % 12], l[1 + int(i / 12) % 10], b[1 + int(i / 7) % 8], (i % 9 ? "true" : "false");
  }' >"$work/members.jsonl"

  # Newsletters need recorded consent: the members granted it in the portal; one in fifty has
  # since withdrawn (those are skipped, with the reason, at send time).
  awk -v n="$RECIPIENTS" 'BEGIN {
    for (i = 1; i <= n; i++)
      printf "HSET budstikke:consent:{M%07d} email:newsletter %s|2026-11-01T12:00:00Z|portal\n", i, (i % 50 ? "granted" : "withdrawn");
  }' | redis-cli -p "$redis_port" --pipe >/dev/null

  sed -e "s#redis://127.0.0.1:6379/0#redis://127.0.0.1:$redis_port/0#" -e "s#port: 2525#port: $sink_port#" \
    "$ROOT/deploy/budstikke.example.yaml" >"$work/budstikke.yaml"
  local campaign="demo-$(date +%H%M%S)"
  "$bin" enqueue --config "$work/budstikke.yaml" --campaign "$campaign" --template "$ROOT/deploy/templates/newsletter" \
    --recipients "$work/members.jsonl" --category newsletter --from nyheter@forbundet.example --from-name "Forbundet Øst"
  local start end
  start=$(date +%s.%N)
  "$bin" --log-level warn run --config "$work/budstikke.yaml" --until-idle
  end=$(date +%s.%N)
  "$bin" status --config "$work/budstikke.yaml" --campaign "$campaign"
  awk -v s="$start" -v e="$end" -v n="$RECIPIENTS" \
    'BEGIN { t = e - s; printf "demo: %d recipients in %.2f s, %.0f msg/s\n", n, t, n / t }'
}

case "$cmd" in
  deps) install_deps ;;
  build) install_deps; build ;;
  test)
    install_deps
    [ -x /usr/sbin/smtp-sink ] || echo "dev.sh: /usr/sbin/smtp-sink is missing (deploy/dev.sh test --with-postfix installs it); tests that need it are skipped"
    if [ "$LONG" -eq 1 ]; then export BUDSTIKKE_LONG_TESTS=1; fi
    if command -v npm >/dev/null; then (cd "$ROOT/examples/node" && npm ci --no-audit --no-fund --loglevel=error) || echo "dev.sh: npm ci failed; the Node example's test is skipped"; else echo "dev.sh: npm is missing; the Node example's test is skipped"; fi
    if [ "$TSAN" -eq 1 ]; then tsan_suite; exit $?; fi
    if [ "$SANITIZE" -eq 1 ]; then sanitized_suite; exit $?; fi  # the fuzz harnesses use ASan + UBSan already
    build
    ctest --test-dir "$BUILD" --output-on-failure -j 2 --timeout 1800
    fuzz "${FUZZ_SECONDS:-20}"
    ;;
  fuzz) install_deps; fuzz "${FUZZ_SECONDS:-300}" ;;
  demo) install_deps; build budstikke; demo ;;
  *) usage >&2; exit 2 ;;
esac
