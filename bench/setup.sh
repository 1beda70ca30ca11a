#!/usr/bin/env bash
# Installs what bench/ needs and nothing else of the project's:
#   - Debian packages: nginx (the C limit), wrk, redis-server, taskset;
#     the Go toolchain is expected on PATH or at /usr/local/go;
#   - bench/.venv-peers: the peers from PyPI, pinned in requirements-peers.txt,
#     made with the machine's python3;
#   - bench/.bin/wsgen: the compiled WebSocket load generator (bench/wsgen/).
# dfws-asgi itself is not built here: scripts/build.sh (or pip install .)
# does it; the benchmarks take its path with --dfws.
# Safe to run again: each step only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(nginx wrk redis-server util-linux)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bench/setup.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # Where the machine lets packages start services, nginx's starts a system
  # nginx on port 80; harmless: the benchmarks run nginx with their own config.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

if [ ! -x .venv-peers/bin/python ]; then
  python3 -m venv .venv-peers
fi
# Reinstall only when the pins changed since the last install.
if ! cmp -s requirements-peers.txt .venv-peers/installed.txt; then
  .venv-peers/bin/pip install --quiet --disable-pip-version-check -r requirements-peers.txt
  cp requirements-peers.txt .venv-peers/installed.txt
fi

GO=$(command -v go || echo /usr/local/go/bin/go)
mkdir -p .bin
(cd wsgen && "$GO" build -trimpath -o ../.bin/wsgen .)
echo "bench/setup.sh: peers in bench/.venv-peers, load generator at bench/.bin/wsgen"
