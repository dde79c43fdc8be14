# bench/options.sh: the options the bench scripts share, read from the caller's "$@". Source it
# (`. "$here/../options.sh"`) after setting the defaults: n, build, work, and when the script
# takes them jobs and quick, and usage_lines (the last line of the script's usage comment):
#   -n N     items (n)                    -b DIR  a built kiln (build)
#   -w DIR   scratch folder (work)        -j N    threads (jobs; when the script set jobs)
#   -s       a quick run: n=$quick (when the script set quick)
# Anything else prints the script's comment lines 2..usage_lines and exits 2. Then sets
# kiln=$build/kiln and checks that it is built and that /usr/bin/time is there.
bench_usage() { sed -n "2,${usage_lines}p" "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    -n) [ $# -ge 2 ] || bench_usage; n=$2; shift 2 ;;
    -b) [ $# -ge 2 ] || bench_usage; build=$2; shift 2 ;;
    -w) [ $# -ge 2 ] || bench_usage; work=$2; shift 2 ;;
    -j) [ -n "${jobs:-}" ] && [ $# -ge 2 ] || bench_usage; jobs=$2; shift 2 ;;
    -s) [ -n "${quick:-}" ] || bench_usage; n=$quick; shift ;;
    *) bench_usage ;;
  esac
done
case $n in ''|*[!0-9]*) echo "$0: -n takes a number, not '$n'" >&2; exit 2 ;; esac
kiln=$build/kiln
[ -x "$kiln" ] || { echo "$0: no $kiln; build kiln first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "$0: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
