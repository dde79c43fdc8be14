/* The command's words for the library's hints (enum kiln_hint in kiln/error.h). libkiln says
 * what is wrong; only the command knows its verbs and flags, so only it says which to type
 * next (git's advice.c does the same). One sentence each, printed as "hint: ..." after the
 * error; "%s" is the error's hint_arg (an item id, a pid), or "" when it has none. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const char *const hint_text[KILN_HINT__COUNT] = {
	[KILN_HINT_INIT] = "run `kiln init` to start a project here, or `kiln -C DIR` to name one",
	[KILN_HINT_PLAN] = "run `kiln plan` first (or `kiln build`, which runs every stage that is stale)",
	[KILN_HINT_RENDER] = "run `kiln render` (`kiln show %s` says why an item failed), or `kiln build`",
	[KILN_HINT_RENDER_FORCE] = "run `kiln render --force %s` to make it again",
	[KILN_HINT_QA] = "run `kiln qa`",
	[KILN_HINT_QA_FAILED] = "fix them and run `kiln qa` again, or release anyway with "
		"`kiln release --allow-qa-failures`",
	[KILN_HINT_RELEASE] = "run `kiln release` first, and give its dist/ folder",
	[KILN_HINT_RELEASE_FORCE] = "`kiln release --force` writes the release again",
	[KILN_HINT_STARTING_INDEX] = "reveal with `kiln release --starting-index N`",
	[KILN_HINT_RE_REVEAL] = "give the recorded `--starting-index %s` (or none), or add "
		"`--re-reveal` to reveal again with another",
	[KILN_HINT_LIST_ITEMS] = "`kiln ls` lists the items (run `kiln plan` first)",
	[KILN_HINT_DRY_RUN_AI] = "`kiln render --dry-run` is for AI engines (a1111, comfyui, sdcpp)",
	[KILN_HINT_LOCKED] = "wait for it to finish (process %s), or stop it; read-only verbs "
		"(status, ls, show, verify) run beside it",
	[KILN_HINT_ALLOW_PATH] = "move the file into the project, or allow its folder with "
		"`--allow-path DIR` or `paths: {allow: [DIR]}` in kiln.yaml",
	[KILN_HINT_LAYER_ORDER] = "`--order A,B,C` takes the layer folders' names, bottom first",
	[KILN_HINT_EFFORT] = "run `kiln plan --effort %s` to search longer (each step of effort "
		"multiplies the search budget)",
	[KILN_HINT_REVIEW] = "review them with `kiln review` (or release anyway with "
		"--allow-unreviewed, which is recorded)",
	[KILN_HINT_POLISH_EDIT] = "export the token's current image (`kiln polish export %s`) "
		"and import the edit again made on it, or drop its edits with `kiln polish reset ID`",
	[KILN_HINT_POLISH] = "run `kiln polish` (or `kiln build`)",
	[KILN_HINT_KEYS_INIT] = "run `kiln keys init --studio NAME` (keys go to $KILN_KEYS_DIR, "
		"else ~/.config/kiln/keys/)",
	[KILN_HINT_ARTIST_EDIT] = "reject it, or have an artist edit its image (`kiln polish export "
		"%s`, then `kiln polish import`)",
	[KILN_HINT_TRAIN_RUNNING] = "follow it to its end with `kiln train run %s` (it collects the "
		"LoRA), or stop it with --cancel; then prepare again",
};

void cli_hint_text(const struct kiln_error *e, char *out, size_t cap)
{
	out[0] = 0;
	if (e->hint <= KILN_HINT_NONE || e->hint >= KILN_HINT__COUNT || !hint_text[e->hint])
		return;
	const char *arg = e->hint_arg[0] ? e->hint_arg : "ID";
	if (e->hint == KILN_HINT_LOCKED && !e->hint_arg[0])
		arg = "?";
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (strstr(hint_text[e->hint], "%s"))
		snprintf(out, cap, hint_text[e->hint], arg);
	else
		snprintf(out, cap, "%s", hint_text[e->hint]);
#pragma GCC diagnostic pop
}
