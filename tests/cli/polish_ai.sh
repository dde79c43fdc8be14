# Polish on an AI project (A1111 test server): the IPTC disclosure of every polished PNG, read
# back by exiftool: an upscaled render is still trainedAlgorithmicMedia; a token with an
# overlay (a human-made layer) or an imported artist's edit is
# compositeWithTrainedAlgorithmicMedia; the released images are the polished ones. The
# render's A1111 "parameters" text stays on every polished PNG (exiftool -PNG:Parameters).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol a1111 --auth owl:s3cret-hoot
P=$T/p
ai_owls "$P" a1111
export KILN_GPU_AUTH=owl:s3cret-hoot
DB=$P/.kiln/catalog.db
q() { sqlite3 "$DB" "$1"; }
# the example's legendary is drawn at 256 px: at the collection's 512 for QA's size check
vips resize "$P/legendaries/founder.png" "$T/f.png" 2 --kernel nearest && cp "$T/f.png" "$P/legendaries/founder.png"
vips black "$T/ov.v" 512 512 --bands 4 && vips draw_rect "$T/ov.v" "255 0 0 255" 10 10 50 50 --fill &&
	vips copy "$T/ov.v" "$P/hat-fix.png" || fail "drawing the overlay"
cat >>"$P/kiln.yaml" <<'EOF2'
polish:
  - overlay: {file: hat-fix.png, tokens: [1]}
  - upscale: {factor: 2, method: nearest}
EOF2
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "plan/render"
"$KILN" -C "$P" polish -q
expect_eq "polish" $? 0
expect_eq "overlay on token 1 only" "$(q "select group_concat(item_id) from polish_steps where kind = 'overlay'")" 1
dst() { exiftool -s3 -XMP-iptcExt:DigitalSourceType "$1"; }
B=http://cv.iptc.org/newscodes/digitalsourcetype
st() { echo "$P/.kiln/store/$(echo "$1" | cut -c1-2)/$1"; }
f2=$(q "select output from polish_steps where item_id = 2 and kind = 'upscale'")
expect_eq "upscaled AI image: trained" "$(dst "$(st "$f2")")" "$B/trainedAlgorithmicMedia"
f1=$(q "select output from polish_steps where item_id = 1 and kind = 'upscale'")
expect_eq "overlaid AI image: composite" "$(dst "$(st "$f1")")" "$B/compositeWithTrainedAlgorithmicMedia"
params() { exiftool -s3 -PNG:Parameters "$1"; }
for id in 1 2; do
	r=$(q "select image from items where id = $id")
	f=$(q "select output from polish_steps where item_id = $id and kind = 'upscale'")
	[ -n "$(params "$(st "$r")")" ] && ok || fail "render $id has no A1111 parameters"
	expect_eq "polished $id keeps the render's parameters" "$(params "$(st "$f")")" "$(params "$(st "$r")")"
done
# an artist's edit of token 3 (its image mirrored stands in for it)
"$KILN" -C "$P" polish export 3 --to "$T/ex" >/dev/null && vips flip "$T/ex/3.png" "$T/ex/3e.png" horizontal &&
	"$KILN" -C "$P" polish import 3 "$T/ex/3e.png" --by Ana >/dev/null
expect_eq "import" $? 0
f3=$(q "select output from polish_steps where item_id = 3 and kind = 'edit'")
expect_eq "edited AI image: composite" "$(dst "$(st "$f3")")" "$B/compositeWithTrainedAlgorithmicMedia"
expect_eq "the edit's raw file is named by its hash" \
	"$(q "select json_extract(settings, '\$.sha256') from polish_steps where item_id = 3 and kind = 'edit'")" \
	"$(sha256sum <"$T/ex/3e.png" | cut -c1-64)"
"$KILN" -C "$P" build -q 2>"$T/build.err"; cat "$T/build.err"
expect_eq "build" $? 0
expect_eq "released 1 is composite" "$(dst "$P/dist/images/1.png")" "$B/compositeWithTrainedAlgorithmicMedia"
expect_eq "released 2 is trained" "$(dst "$P/dist/images/2.png")" "$B/trainedAlgorithmicMedia"
expect_eq "released 2 keeps the parameters" "$(params "$P/dist/images/2.png")" \
	"$(params "$(st "$(q "select image from items where id = 2")")")"
expect_eq "released 3 is the edit" "$(sha256sum <"$P/dist/images/3.png" | cut -c1-64)" "$f3"
expect_eq "released size" "$(vipsheader -f width "$P/dist/images/2.png")" 1024
finish
