/* spec: the parser's results and its errors, the starter spec, allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/spec.h"
#include "util/alloc.h"

static const char full[] =
	"collection: {name: Owls, symbol: OWL, size: 4, seed: 9, description: d, "
	"external_url: 'https://x.example'}\n"
	"image: {width: 64, height: 32, format: webp, quality: 80, lossless: false}\n"
	"layers:\n"
	"  - name: Background\n"
	"    bypass_dna: true\n"
	"    traits:\n"
	"      - {name: Dusk, weight: 3, file: a.png}\n"
	"      - {name: Gold, percent: 12.5, file: b.png}\n"
	"  - name: Hat\n"
	"    optional: {count: 2}\n"
	"    none_name: Bare\n"
	"    blend: multiply\n"
	"    opacity: 0.5\n"
	"    traits:\n"
	"      - {name: Crown, count: 3, file: c.png}\n"
	"      - {name: Cap, file: d.png}\n"
	"      - {name: Wizard, weight: 2, file: e.png}\n"
	"rules:\n"
	"  - {exclude: {Hat: [Crown, Cap], Background: Gold}}\n"
	"  - {if: {Hat: Wizard}, then: {Background: Dusk}}\n"
	"  - {with: {Hat: Bare, Background: Dusk}}\n"
	"uniqueness: {min_distance: 1}\n"
	"legendaries:\n"
	"  - {name: One, file: f.png, attributes: {Type: Legendary, Tier: 1}}\n"
	"metadata: {name: 'Owl {id}', start_id: 0, base_uri: 'ipfs://x/', targets: [erc721, erc1155]}\n";

static void parses_everything(void **state)
{
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	(void)state;
	if (kiln_spec_parse(&s, full, strlen(full), "k.yaml", NULL, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_string_equal(s->name, "Owls");
	assert_int_equal(s->size, 4);
	assert_int_equal(s->seed, 9);
	assert_string_equal(s->external_url, "https://x.example");
	assert_int_equal(s->width, 64);
	assert_int_equal(s->height, 32);
	assert_int_equal(s->format, KILN_FORMAT_WEBP);
	assert_int_equal(s->quality, 80);
	assert_int_equal(s->lossless, 0);
	assert_int_equal(s->nlayers, 2);
	assert_true(s->layers[0].bypass_dna);
	assert_int_equal(s->layers[0].traits[1].quota, KILN_QUOTA_PERCENT);
	assert_true(s->layers[0].traits[1].amount == 12.5);
	const struct kiln_layer *hat = &s->layers[1];
	assert_int_equal(hat->ntraits, 4);
	assert_true(hat->has_none);
	assert_true(hat->traits[3].is_none);
	assert_string_equal(hat->traits[3].name, "Bare");
	assert_int_equal(hat->traits[3].quota, KILN_QUOTA_COUNT);
	assert_int_equal(hat->blend, KILN_BLEND_MULTIPLY);
	assert_true(hat->opacity == 0.5);
	assert_int_equal(hat->traits[1].quota, KILN_QUOTA_WEIGHT); /* no quota: weight 1 */
	assert_true(hat->traits[1].amount == 1);
	assert_int_equal(s->nrules, 3);
	assert_int_equal(s->rules[0].kind, KILN_RULE_EXCLUDE);
	assert_int_equal(s->rules[0].nwhen, 2);
	assert_int_equal(s->rules[0].when[0].ntraits, 2);
	assert_int_equal(s->rules[1].kind, KILN_RULE_IF);
	assert_int_equal(s->rules[1].then[0].layer, 0);
	assert_int_equal(s->rules[2].kind, KILN_RULE_WITH);
	assert_int_equal(s->rules[2].when[0].traits[0], 3); /* the none value by its name */
	assert_int_equal(s->nlegendaries, 1);
	assert_int_equal(s->legendaries[0].nattrs, 2);
	assert_string_equal(s->legendaries[0].attrs[1].value, "1");
	assert_int_equal(s->start_id, 0);
	assert_int_equal(s->targets, KILN_TARGET_ERC721 | KILN_TARGET_ERC1155);
	assert_int_equal(kiln_spec_generated(s), 3);
	assert_int_equal(s->layers[1].loc.line, 9);
	kiln_spec_free(s);
}

static void defaults(void **state)
{
	const char y[] = "collection: {name: A, size: 2}\n"
			 "layers: [{name: L, traits: [{name: x, file: x.png}, {name: y, file: y.png}]}]\n";
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	(void)state;
	assert_int_equal(kiln_spec_parse(&s, y, strlen(y), "k.yaml", NULL, &e), 0);
	assert_int_equal(s->width, 1024);
	assert_int_equal(s->format, KILN_FORMAT_PNG);
	assert_int_equal(s->png_compression, 6);
	assert_int_equal(s->min_distance, 1);
	assert_int_equal(s->start_id, 1);
	assert_string_equal(s->engine, "compose");
	assert_string_equal(s->name_pattern, "{name} #{id}");
	assert_string_equal(s->base_uri, "ipfs://REPLACE_WITH_IMAGES_CID");
	assert_int_equal(s->layers[0].blend, KILN_BLEND_OVER);
	assert_true(s->layers[0].opacity == 1);
	kiln_spec_free(s);
}

static void starter_parses(void **state)
{
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	const char *t = kiln_spec_starter();
	(void)state;
	if (kiln_spec_parse(&s, t, strlen(t), "kiln.yaml", NULL, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_true(s->nlayers >= 2);
	assert_true(s->nrules >= 1);
	kiln_spec_free(s);
}

struct bad {
	const char *yaml;
	const char *where;
	const char *msg;
};

static void errors(void **state)
{
	static const struct bad cases[] = {
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x, file: a}, "
		 "{name: x, file: b}]}]\n", "k.yaml:2:", "two traits named 'x'"},
		{"collection: {name: A, size: 0}\nlayers: [{name: L, traits: [{name: x, file: a}]}]\n",
		 "k.yaml:1:", "between 1 and"},
		{"collection: {name: A, size: 2}\nlayers: []\n", "k.yaml", "layers is empty"},
		{"collection: {name: A, size: 2}\n", "k.yaml:", "no layers"},
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x, file: a, "
		 "wieght: 2}]}]\n", "k.yaml:2:", "did you mean 'weight'"},
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x, file: a, "
		 "count: 1.5}]}]\n", "k.yaml:2:", "whole number of tokens"},
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x, file: a}]}, "
		 "{name: l, traits: [{name: y, file: b}]}]\n", "k.yaml:2:", "two layers are named"},
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x, file: a}]}]\n"
		 "rules: [{exclude: {L: x}}]\n", "k.yaml:3:", "two or more layers"},
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x, file: a}]}]\n"
		 "rules: [{if: {L: x}}]\n", "k.yaml:3:", "needs then"},
		{"collection: {name: A, size: 2}\nengine: dalle\nlayers: [{name: L, traits: [{name: x, "
		 "file: a}]}]\n", "k.yaml:2:9", "not available"},
		{"collection: {name: A, size: 2}\nlayers: [{name: L, traits: [{name: x}]}]\n",
		 "k.yaml:2:", "has no file"},
		{"- just\n- a list\n", "k.yaml:1:", "the spec must be a mapping"},
		{"collection: {name: A, size: 2\n", "k.yaml:", "not valid YAML"},
		{"", "k.yaml", "the spec is empty"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct kiln_spec *s = (struct kiln_spec *)1;
		struct kiln_error e;
		kiln_error_clear(&e);
		int rc = kiln_spec_parse(&s, cases[i].yaml, strlen(cases[i].yaml), "k.yaml", NULL, &e);
		if (rc != KILN_E_SPEC || !strstr(e.where, cases[i].where) ||
		    !strstr(e.msg, cases[i].msg))
			fail_msg("case %zu: rc %d where '%s' msg '%s'", i, rc, e.where, e.msg);
		assert_null(s);
	}
}

static void allocation_failures(void **state)
{
	long n, ok = 0;
	(void)state;
	for (n = 0; n < 2000; n++) {
		struct kiln_spec *s = NULL;
		struct kiln_error e;
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_spec_parse(&s, full, strlen(full), "k.yaml", NULL, &e);
		kiln_alloc_fail_after(-1);
		if (!rc) {
			ok = 1;
			kiln_spec_free(s);
			break;
		}
		assert_int_equal(rc, KILN_E_NOMEM);
		assert_null(s);
	}
	assert_true(ok);
	assert_true(n > 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_everything), cmocka_unit_test(defaults),
		cmocka_unit_test(starter_parses), cmocka_unit_test(errors),
		cmocka_unit_test(allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
