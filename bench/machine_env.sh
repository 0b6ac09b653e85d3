# Sourced by the bench scripts (`. bench/machine_env.sh`): `machine_env` prints the lines each result's
# .env file starts with — when, on what machine, and how loaded it was at the start.
machine_env() {
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
}
