#!/bin/sh
# Install the Debian packages kiln needs to build, run and test. Quick when they are present:
# it only calls apt-get for what dpkg says is missing. Runs as root (or through sudo).
set -eu
PKGS="build-essential cmake pkg-config git
libvips-dev libfyaml-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev
libssl-dev libimagequant-dev libdeflate-dev libxxhash-dev zlib1g-dev libcmocka-dev
coinor-libclp-dev coinor-libcbc-dev
libmicrohttpd-dev libpotrace-dev libcbor-dev libarchive-dev
python3 python3-pil sqlite3"
# libmicrohttpd: the review server; libpotrace + libimagequant: polish's vectorizer; libcbor:
# the C2PA claims and COSE signatures of the portfolio; libarchive: the tar of a prepared
# training folder sent to RunPod
if [ "${1:-}" = "--test" ]; then
  # valgrind; numpy and scipy for the imagehash oracle (tests/qa/compare_phash.sh); the
  # dispatcher test's HTTP server
  PKGS="$PKGS valgrind python3-numpy python3-scipy"
  # toml (0.10.2, what kohya pins) and yaml read the trainer inputs of tests/cli/train_prepare.sh
  PKGS="$PKGS python3-toml python3-yaml"
  # outside readers of what kiln writes: chromium (driven by npm puppeteer-core, which uses
  # the installed browser) for the review app; exiftool for XMP; rsvg-convert and the potrace
  # CLI for polish's SVGs; vipsthumbnail / vips for the benchmarks' peers
  PKGS="$PKGS chromium libimage-exiftool-perl librsvg2-bin potrace libvips-tools"
  # clang and its libFuzzer runtime for the fuzz targets (tests/fuzz, the CTest fuzz/short)
  PKGS="$PKGS clang libclang-rt-14-dev"
  # The IPFS tests compare with the npm importer (tests/ipfs): Node.js and npm, Debian's unless
  # the machine already has its own (a NodeSource node ships npm inside).
  command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "kiln: installing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
