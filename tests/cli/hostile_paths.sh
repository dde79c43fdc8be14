# Nothing leaves the project that was not meant to (issue 19): every file a spec names must
# resolve, symbolic links followed, inside the project folder (or a folder paths.allow names),
# and be a regular file. Each field that names a file is tried with a file outside the project
# (../, an absolute path, a symbolic link pointing out) and with a FIFO: exit 2 naming
# kiln.yaml:line:col, before anything is read, written to dist/ or sent.
. "$(dirname "$0")/lib.sh"
SECRET=$T/outside/secret.png
mkdir -p "$T/outside"
cp "$KILN_SRC/examples/owls/layers/Hat/halo.png" "$SECRET"
refused() { # what dir expected-text
	timeout 30 "$KILN" -C "$2" build -q >"$T/o" 2>&1
	rc=$?
	expect_eq "$1: exit" $rc 2
	expect_contains "$1: names kiln.yaml:line:col" "$T/o" "kiln.yaml:"
	expect_contains "$1: says why" "$T/o" "$3"
	[ ! -e "$2/dist" ] && ok || fail "$1: dist/ was written"
}
P=$T/owls
# a layer file: ../ out of the project
owls "$P"
sed -i 's#file: layers/Hat/halo.png#file: ../outside/secret.png#' "$P/kiln.yaml"
refused "layer ../" "$P" "outside the project folder"
expect_contains "layer ../: the hint" "$T/o" "hint: move the file into the project"
# a layer file: an absolute path
owls "$P"
sed -i "s#file: layers/Hat/halo.png#file: $SECRET#" "$P/kiln.yaml"
refused "layer absolute" "$P" "is $SECRET, outside the project folder"
# a layer file that is a symbolic link pointing out
owls "$P"
rm "$P/layers/Hat/halo.png"
ln -s "$SECRET" "$P/layers/Hat/halo.png"
refused "layer symlink out" "$P" "outside the project folder"
# a layer folder that is a symbolic link pointing out
owls "$P"
mv "$P/layers/Hat" "$T/outside/Hat"
ln -s "$T/outside/Hat" "$P/layers/Hat"
refused "layer folder symlink out" "$P" "outside the project folder"
rm -rf "$T/outside/Hat"
# a legendary
owls "$P"
sed -i 's#file: legendaries/founder.png#file: ../outside/secret.png#' "$P/kiln.yaml"
refused "legendary ../" "$P" "outside the project folder"
# metadata images: contract image, banner, hidden image, Metaplex collection image
for field in 'contract: {image: X}' 'contract: {banner_image: X}' 'contract: {featured_image: X}' \
	'reveal: {hidden_image: X}' 'metaplex: {collection: {image: X}}'; do
	owls "$P"
	block=$(echo "$field" | sed "s#X#../../../../../../../..$SECRET#")
	echo "metadata: {targets: [erc721, metaplex], $block, metaplex: {creators: [{address: \"11111111111111111111111111111111\", share: 100}]}}" >"$T/meta"
	case "$field" in metaplex*) echo "metadata: {targets: [erc721, metaplex], metaplex: {creators: [{address: \"11111111111111111111111111111111\", share: 100}], collection: {name: Owls, image: ../../../../../../../..$SECRET}}}" >"$T/meta" ;; esac
	set_metadata "$P" <"$T/meta"
	refused "metadata $field" "$P" "outside the project folder"
done
# a FIFO where a layer file should be: refused at once, nothing blocks
owls "$P"
rm "$P/layers/Hat/halo.png"
mkfifo "$P/layers/Hat/halo.png"
refused "layer FIFO" "$P" "FIFO"
# a device
owls "$P"
sed -i 's#file: layers/Hat/halo.png#file: ../../../../../../../../dev/zero#' "$P/kiln.yaml"
refused "layer /dev/zero" "$P" "outside the project folder"
# ControlNet image of an AI spec: refused before any request is built (render --dry-run)
A=$T/ai
rm -rf "$A"
cp -r "$KILN_SRC/examples/ai-owls" "$A"
sed -i "s#image: controlnet/halo_canny.png#image: $SECRET#" "$A/kiln.yaml"
timeout 30 "$KILN" -C "$A" render --dry-run 1 >"$T/o" 2>&1
expect_eq "controlnet image: exit" $? 2
expect_contains "controlnet image: says why" "$T/o" "outside the project folder"
grep -q "$(base64 -w0 "$SECRET" | head -c 40)" "$T/o" && fail "controlnet image: the file was encoded into a request" || ok
# a file inside the project that becomes an image in dist/ is checked as an image first
owls "$P"
echo "not a picture" >"$P/hidden.png"
set_metadata "$P" <<'Y'
metadata: {reveal: {hidden_image: hidden.png}}
Y
timeout 30 "$KILN" -C "$P" build -q >"$T/o" 2>&1
expect_eq "hidden image that is text: exit" $? 2
expect_contains "hidden image that is text: says why" "$T/o" "hidden.png: not an image kiln can take"
[ ! -e "$P/dist" ] && ok || fail "hidden image that is text: dist/ was written"
# ... and one whose header declares 50,000 x 50,000 pixels (a few KB) is not decoded
owls "$P"
$PY - "$P/huge.png" <<'PY'
import struct, sys, zlib
def chunk(t, b):
    return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
PY
set_metadata "$P" <<'Y'
metadata: {contract: {image: huge.png}}
Y
timeout 30 "$KILN" -C "$P" build -q >"$T/o" 2>&1
expect_eq "contract image of 50000x50000: exit" $? 2
expect_contains "contract image of 50000x50000: says why" "$T/o" "over the limit of 64.0 Mpx"
# ... and a PNG cut short (a sound header, half its data) is caught by the decode
owls "$P"
head -c 300 "$KILN_SRC/examples/owls/legendaries/founder.png" >"$P/cut.png"
set_metadata "$P" <<'Y'
metadata: {contract: {image: cut.png}}
Y
timeout 30 "$KILN" -C "$P" build -q >"$T/o" 2>&1
expect_eq "contract image cut short: exit" $? 2
expect_contains "contract image cut short: says why" "$T/o" "cut.png: not an image kiln can take"
# a ControlNet image that is not an image never goes into a request
rm -rf "$A"
cp -r "$KILN_SRC/examples/ai-owls" "$A"
echo "secret text" >"$A/controlnet/halo_canny.png"
"$KILN" -C "$A" plan -q >/dev/null 2>&1
timeout 30 "$KILN" -C "$A" render --dry-run 1 >"$T/o" 2>&1
expect_eq "controlnet image that is text: exit" $? 2
expect_contains "controlnet image that is text: says why" "$T/o" "not an image kiln can take"
# opted in: paths.allow names the outside folder, and the same spec builds
owls "$P"
sed -i 's#file: layers/Hat/halo.png#file: ../outside/secret.png#' "$P/kiln.yaml"
printf 'paths: {allow: [../outside]}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build -q >"$T/o" 2>&1
expect_eq "paths.allow: builds" $? 0
# paths.allow must name a folder
owls "$P"
printf 'paths: {allow: [../nowhere]}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" plan >"$T/o" 2>&1
expect_eq "paths.allow of no folder: exit" $? 2
expect_contains "paths.allow of no folder: says why" "$T/o" "'../nowhere' is not a folder"
finish
