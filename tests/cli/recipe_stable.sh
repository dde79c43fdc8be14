# Recipes are what decide whether an existing project re-renders: they must stay byte for byte
# what earlier kiln computed. The expected values below were computed by kiln at 9b95297 (before
# the recipe module) on the same inputs: examples/owls (compose) and examples/ai-owls (AI
# engines, with ControlNet images, the ComfyUI workflow, and a non-PNG stored format).
# The planner's most-constrained-first construction (issue 20) gives these examples another
# plan, so the values were recomputed then: the recipe code did not change, its inputs (each
# item's traits) did. A fresh plan is not pinned across versions; a stored plan is kept.
. "$(dirname "$0")/lib.sh"
U=http://127.0.0.1:9
# compose: every item's recipe, then a second render finds every item up to date
P=$T/owls
owls "$P"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err" || fail "render: $(cat "$T/err")"
got=$(sqlite3 "$P/.kiln/catalog.db" "select id || ' ' || recipe from items order by id" | sha256sum | cut -c1-64)
expect_eq "compose recipes as kiln 9b95297 made them" "$got" "6b5becf3af76114619f8f7a963587da6863501ec806d3dd65c04f9b512eafef8"
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
expect_eq "a1111 recipes as kiln 9b95297 made them" "$(sum "$T/a1111.recipes")" "08280f83d6061c24eceed309221dfa684daa5b5b96882d8f67996be07de3f386"
# what kiln 9b95297 stored in the catalog for item 2 after rendering on the test server
expect_eq "item 2's a1111 recipe" "$(sed -n 's/^2 //p' "$T/a1111.recipes")" "1230c79ed2890f1364448e74616f0738043f345587c1cb2aad28b514be85e1fd"
ai "$T/webp" comfyui 's/, auth_env: KILN_GPU_AUTH//; s/format: png/format: webp, quality: 80, lossless: false/'
expect_eq "webp recipes as kiln 9b95297 made them" "$(sum "$T/webp.recipes")" "7222e26ab9b0933c261b8151cffecb70ad5d0037d5f7bfe4ee47a0d6aa1cdeef"
finish
