# Recipes are what decide whether an existing project re-renders: they must stay byte for byte
# what earlier kiln computed. The expected values below were computed by kiln at 9b95297 (before
# the recipe module) on the same inputs: examples/owls (compose) and examples/ai-owls (AI
# engines, with ControlNet images, the ComfyUI workflow, and a non-PNG stored format).
. "$(dirname "$0")/lib.sh"
U=http://127.0.0.1:9
# compose: every item's recipe, then a second render finds every item up to date
P=$T/owls
owls "$P"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err" || fail "render: $(cat "$T/err")"
got=$(sqlite3 "$P/.kiln/catalog.db" "select id || ' ' || recipe from items order by id" | sha256sum | cut -c1-64)
expect_eq "compose recipes as kiln 9b95297 made them" "$got" "5816d0ec968403189d8465e4c6dc69059e603479b8f4d30e62f54c3d806c721a"
"$KILN" -C "$P" render --json >"$T/again.json" 2>"$T/err"
expect_eq "second render exit" $? 0
expect_contains "nothing rendered again" "$T/again.json" '"rendered":0'
# AI: the recipe of every item's candidate 0, as --dry-run shows it (nothing is sent)
ai_recipes() { # dir
	for id in $(sqlite3 "$1/.kiln/catalog.db" "select id from items where kind = 'generated' order by id"); do
		"$KILN" -C "$1" render --dry-run "$id" 2>&1 | sed -n 's/^# item \([0-9]*\),.* recipe \([0-9a-f]*\)$/\1 \2/p'
	done
}
ai() { # dir engine sed: writes dir.recipes
	rm -rf "$1"
	cp -r "$KILN_SRC/examples/ai-owls" "$1"
	sed -i "s#http://127.0.0.1:7860#$U#; s/^engine: a1111/engine: $2/; $3" "$1/kiln.yaml"
	"$KILN" -C "$1" plan -q || fail "plan $2"
	ai_recipes "$1" >"$1.recipes"
	expect_eq "$2: one recipe per generated item" "$(wc -l <"$1.recipes")" 59
}
sum() { sha256sum <"$1" | cut -c1-64; }
export KILN_GPU_AUTH=owl:hoot
ai "$T/a1111" a1111 ''
# the recipe is engine-neutral: the same for every engine (the workflow's hash included)
expect_eq "a1111 recipes as kiln 9b95297 made them" "$(sum "$T/a1111.recipes")" "dc599c4bcf56773d772878ae6afc2805e6e3d5f89c20f79f2cb1946347500998"
# what kiln 9b95297 stored in the catalog for item 2 after rendering on the test server
expect_eq "item 2's a1111 recipe" "$(sed -n 's/^2 //p' "$T/a1111.recipes")" "604d65e08cb9c1317db76802ac7d0f0492a8bad15ca2095049dd683f64a72a7b"
ai "$T/webp" comfyui 's/, auth_env: KILN_GPU_AUTH//; s/format: png/format: webp, quality: 80, lossless: false/'
expect_eq "webp recipes as kiln 9b95297 made them" "$(sum "$T/webp.recipes")" "033d609eab0df9c698d13811c8645eee64e19f3b821805f85736f404477c3b65"
finish
