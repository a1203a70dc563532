#!/usr/bin/env bash
# Fails when a module includes a module it may not (docs/architecture.md): each folder may include
# only itself and the folders before it in this order, so the graph has no cycle and no arrow
# that runs back up. testpeers/ is outside production: only bench/, cli/ and tests/ may use it.
set -euo pipefail
root=${1:?source directory}
order=(support templates queue adapters config engine admin testpeers bench cli)
declare -A allowed=(
  [support]="support"
  [templates]="support templates"
  [queue]="support queue"
  [adapters]="support templates adapters"
  [config]="support templates queue adapters config"
  [engine]="support templates queue adapters config engine"
  [admin]="support templates queue adapters config engine admin"
  [testpeers]="support adapters testpeers"
  [bench]="support templates queue adapters config engine testpeers bench"
  [cli]="support templates queue adapters config engine admin testpeers bench cli"
)
bad=0
for module in "${order[@]}"; do
  while IFS= read -r line; do
    file=${line%%:*}
    target=$(sed -n 's/.*#include "\([a-z_]*\)\/.*/\1/p' <<<"$line")
    [ -n "$target" ] || continue
    if ! [[ " ${allowed[$module]} " == *" $target "* ]]; then
      echo "${file#"$root"/}: $module/ may not include $target/: ${line#*:}"
      bad=1
    fi
  done < <(grep -rn --include='*.cpp' --include='*.hpp' '^#include "' "$root/$module" || true)
done
# Only config/load.cpp reads YAML; CLI11 stays in cli/ and bench/.
yaml=$(grep -rln --include='*.cpp' --include='*.hpp' 'yaml-cpp/' "$root"/{support,templates,queue,adapters,config,engine,admin,testpeers,bench,cli} | grep -v '/config/load.cpp$' || true)
[ -z "$yaml" ] || { echo "yaml-cpp outside config/load.cpp: $yaml"; bad=1; }
cli11=$(grep -rln --include='*.cpp' --include='*.hpp' 'CLI/CLI.hpp' "$root"/{support,templates,queue,adapters,config,engine,admin,testpeers} || true)
[ -z "$cli11" ] || { echo "CLI11 outside cli/ and bench/: $cli11"; bad=1; }
[ "$bad" -eq 0 ] && echo "includes follow docs/architecture.md"
exit "$bad"
