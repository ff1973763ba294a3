# Shell helpers shared by scripts/bench.sh and scripts/build-gpu.sh (sourced, not run).

# newest_bench TARGET_DIR NAME: the newest bench binary NAME-<hash> that cargo built into
# TARGET_DIR (cargo keeps one per build hash; the .d files beside them are dependency lists).
newest_bench() {
  ls -t "$1"/release/deps/"$2"-* | grep -v '\.d$' | head -1
}
