/* Unit tests for the release's pure parts (lib/provenance.c): the provenance hash (vectors from
 * Python's hashlib), the reveal mapping, ERC-1155 names, kiln_release_verify() on a small
 * handmade release, and the spec's metadata blocks (display types, attributes, contract,
 * metaplex, reveal) with every allocation failing in turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kiln/release.h"
#include "kiln/spec.h"
#include "util/alloc.h"
#include "util/sha.h"

/* sha256("a"), sha256("b") and sha256 of their hex concatenated (hashlib) */
#define HA "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define HB "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
#define HAB "62af5c3cb8da3e4f25061e829ebeea5c7513c54949115b1acc225930a90154da"
#define HEMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void provenance_hash(void **state)
{
	char h[2][65] = {HA, HB}, out[65];
	struct kiln_error e;
	(void)state;
	assert_int_equal(kiln_provenance_hash((const char(*)[65])h, 2, out, &e), 0);
	assert_string_equal(out, HAB);
	assert_int_equal(kiln_provenance_hash((const char(*)[65])h, 0, out, &e), 0);
	assert_string_equal(out, HEMPTY);
	kiln_sha256_hex("a", 1, h[0]);
	assert_string_equal(h[0], HA);
}

static void reveal_mapping(void **state)
{
	(void)state;
	assert_int_equal(kiln_reveal_item(0, 0, 10), 0);
	assert_int_equal(kiln_reveal_item(3, 7, 10), 0);
	assert_int_equal(kiln_reveal_item(9, 7, 10), 6);
	assert_int_equal(kiln_reveal_item(2, 7, 10), 9);
	assert_int_equal(kiln_reveal_item(5, 0, 1), 0);
	/* a permutation */
	{
		int seen[60] = {0};
		for (uint64_t t = 0; t < 60; t++)
			seen[kiln_reveal_item(t, 23, 60)]++;
		for (int i = 0; i < 60; i++)
			assert_int_equal(seen[i], 1);
	}
	/* no overflow near 2^64 */
	assert_true(kiln_reveal_item(UINT64_MAX - 1, UINT64_MAX - 1, UINT64_MAX) == UINT64_MAX - 2);
}

static void erc1155_names(void **state)
{
	char out[65];
	(void)state;
	kiln_erc1155_name(1, out);
	assert_string_equal(out, "0000000000000000000000000000000000000000000000000000000000000001");
	kiln_erc1155_name(255, out);
	assert_string_equal(out, "00000000000000000000000000000000000000000000000000000000000000ff");
	assert_int_equal(strlen(out), 64);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* manifest.sha256 for the files in dir, as kiln release writes it. */
static void write_manifest(const char *dir)
{
	struct kiln_manifest m;
	struct kiln_buf text = KILN_BUF_INIT;
	struct kiln_error e;
	char p[512];
	assert_int_equal(kiln_manifest_list(dir, &m, &e), 0);
	for (size_t i = 0; i < m.n; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, m.v[i].path);
		assert_int_equal(kiln_sha256_file(p, m.v[i].sha256, &e), 0);
	}
	assert_int_equal(kiln_manifest_text(&m, &text, &e), 0);
	snprintf(p, sizeof p, "%s/" KILN_MANIFEST_FILE, dir);
	write_file(p, text.data ? text.data : "");
	kiln_buf_release(&text);
	kiln_manifest_release(&m);
}

static int has_problem(const struct kiln_verify_result *r, const char *text)
{
	for (size_t i = 0; i < r->nproblems; i++)
		if (strstr(r->problems[i], text))
			return 1;
	return 0;
}

/* A release of two "images" whose bytes are "a" and "b", and its records. */
static void verify_small_release(void **state)
{
	char dir[] = "/tmp/kiln-test-release-XXXXXX", p[512], cid[KILN_IPFS_CID_MAX], rec[4096];
	char hash[65];
	struct kiln_verify_result r;
	struct kiln_error e;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/images", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/images/1.png", dir);
	write_file(p, "a");
	snprintf(p, sizeof p, "%s/images/2.png", dir);
	write_file(p, "b");
	snprintf(p, sizeof p, "%s/images", dir);
	assert_int_equal(kiln_ipfs_import_tree(p, NULL, 0, cid, NULL, &e), 0);
	snprintf(p, sizeof p, "%s/provenance.json", dir);
	snprintf(rec, sizeof rec, "{\"provenance_hash\": \"%s\", \"starting_index\": null, "
		 "\"images\": [{\"token_id\": 1, \"file\": \"images/1.png\", \"sha256\": \"%s\"}, "
		 "{\"token_id\": 2, \"file\": \"images/2.png\", \"sha256\": \"%s\"}]}", HAB, HA, HB);
	write_file(p, rec);
	snprintf(p, sizeof p, "%s/ipfs.json", dir);
	snprintf(rec, sizeof rec, "{\"entries\": [{\"name\": \"images\", \"path\": \"images\", "
		 "\"cid\": \"%s\"}]}", cid);
	write_file(p, rec);
	/* no manifest: a finding */
	assert_int_equal(kiln_release_verify(dir, NULL, &r, &e), 0);
	assert_int_equal(r.nproblems, 1);
	assert_true(has_problem(&r, KILN_MANIFEST_FILE ": missing"));
	kiln_verify_result_release(&r);
	write_manifest(dir);
	assert_int_equal(kiln_release_verify(dir, NULL, &r, &e), 0);
	assert_int_equal(r.nproblems, 0);
	assert_string_equal(r.provenance, HAB);
	assert_string_equal(r.images_cid, cid);
	assert_int_equal(r.files, 4); /* two images, two records */
	snprintf(p, sizeof p, "%s/" KILN_MANIFEST_FILE, dir);
	assert_int_equal(kiln_sha256_file(p, hash, &e), 0);
	assert_string_equal(r.manifest, hash); /* the release hash is the manifest's SHA-256 */
	kiln_verify_result_release(&r);
	/* the published release hash: equal passes, another fails, a malformed one is usage */
	assert_int_equal(kiln_release_verify(dir, hash, &r, &e), 0);
	assert_int_equal(r.nproblems, 0);
	kiln_verify_result_release(&r);
	assert_int_equal(kiln_release_verify(dir, HA, &r, &e), 0);
	assert_int_equal(r.nproblems, 1);
	assert_true(has_problem(&r, "release hash"));
	kiln_verify_result_release(&r);
	assert_int_equal(kiln_release_verify(dir, "xyz", &r, &e), KILN_E_USAGE);
	kiln_verify_result_release(&r);
	/* tamper: image 2 becomes "c" */
	snprintf(p, sizeof p, "%s/images/2.png", dir);
	write_file(p, "c");
	assert_int_equal(kiln_release_verify(dir, NULL, &r, &e), 0);
	/* the manifest, the image, the provenance hash, the folder CID */
	assert_int_equal(r.nproblems, 4);
	assert_true(has_problem(&r, "images/2.png: changed"));
	assert_true(has_problem(&r, "images/2.png: sha256"));
	kiln_verify_result_release(&r);
	write_file(p, "b");
	/* a file added anywhere, one removed */
	snprintf(p, sizeof p, "%s/extra.txt", dir);
	write_file(p, "x");
	snprintf(p, sizeof p, "%s/ipfs.json", dir);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(kiln_release_verify(dir, NULL, &r, &e), 0);
	assert_true(has_problem(&r, "extra.txt: not in " KILN_MANIFEST_FILE));
	assert_true(has_problem(&r, "ipfs.json: missing"));
	kiln_verify_result_release(&r);
	snprintf(p, sizeof p, "%s/extra.txt", dir);
	assert_int_equal(unlink(p), 0);
	/* the manifest rewritten along with a forged record still fails: the images do not
	 * give the forged provenance hash */
	snprintf(p, sizeof p, "%s/provenance.json", dir);
	snprintf(rec, sizeof rec, "{\"provenance_hash\": \"%s\", \"images\": [{\"token_id\": 1, "
		 "\"file\": \"images/1.png\", \"sha256\": \"%s\"}, {\"token_id\": 2, \"file\": "
		 "\"images/2.png\", \"sha256\": \"%s\"}]}", HEMPTY, HA, HB);
	write_file(p, rec);
	write_manifest(dir);
	assert_int_equal(kiln_release_verify(dir, NULL, &r, &e), 0);
	assert_true(has_problem(&r, "provenance hash"));
	kiln_verify_result_release(&r);
	/* records that escape the folder are refused: a problem naming the entry, never read */
	write_file(p, "{\"provenance_hash\": \"x\", \"images\": [{\"file\": \"../etc/passwd\", "
		      "\"sha256\": \"" HA "\"}]}");
	assert_int_equal(kiln_release_verify(dir, NULL, &r, &e), 0);
	assert_true(has_problem(&r, "../etc/passwd: provenance.json images[0].file leaves the "
				"release folder"));
	kiln_verify_result_release(&r);
	/* not a release: a missing folder, a folder without records (usage, exit 2) */
	snprintf(p, sizeof p, "%s/nowhere", dir);
	assert_int_equal(kiln_release_verify(p, NULL, &r, &e), KILN_E_USAGE);
	assert_non_null(strstr(e.msg, "no such folder"));
	snprintf(p, sizeof p, "%s/images", dir);
	assert_int_equal(kiln_release_verify(p, NULL, &r, &e), KILN_E_USAGE);
	assert_non_null(strstr(e.msg, "not a release folder"));
	snprintf(p, sizeof p, "rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
}

static const char spec[] =
	"collection: {name: Owls, symbol: OWL, size: 4, external_url: 'https://x.example'}\n"
	"layers:\n"
	"  - name: Level\n"
	"    traits:\n"
	"      - {name: '1', file: a.png}\n"
	"      - {name: '2.5', file: b.png}\n"
	"  - name: Hat\n"
	"    traits:\n"
	"      - {name: Cap, file: c.png}\n"
	"      - {name: Crown, file: d.png}\n"
	"metadata:\n"
	"  name: 'Owl #{id}'\n"
	"  targets: [erc721, erc1155, metaplex]\n"
	"  display: {Level: {display_type: number, max_value: 10}}\n"
	"  attributes:\n"
	"    - {trait_type: Born, value: 1700000000, display_type: date}\n"
	"    - {trait_type: Series, value: One}\n"
	"  contract: {name: Owls Contract, image: 'ipfs://bafyimage', external_link: 'https://o',\n"
	"             collaborators: ['0x00000000000000000000000000000000000000aa']}\n"
	"  metaplex:\n"
	"    seller_fee_basis_points: 250\n"
	"    creators: [{address: '11111111111111111111111111111111', share: 40},\n"
	"               {address: 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA', share: 60}]\n"
	"    collection: {name: Owls, image: col.png}\n"
	"  reveal: {hidden_image: h.png, name: 'Egg #{id}', description: soon}\n";

static void spec_metadata_blocks(void **state)
{
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	(void)state;
	if (kiln_spec_parse(&s, spec, strlen(spec), "k.yaml", NULL, &e))
		fail_msg("%s: %s", e.where, e.msg);
	assert_int_equal(s->targets, KILN_TARGET_ERC721 | KILN_TARGET_ERC1155 | KILN_TARGET_METAPLEX);
	assert_non_null(s->layer_display);
	assert_int_equal(s->layer_display[0].type, KILN_DISPLAY_NUMBER);
	assert_true(s->layer_display[0].has_max && s->layer_display[0].max_value == 10);
	assert_int_equal(s->layer_display[1].type, KILN_DISPLAY_NONE);
	assert_int_equal(s->nmeta_attrs, 2);
	assert_int_equal(s->meta_attrs[0].display, KILN_DISPLAY_DATE);
	assert_string_equal(kiln_display_name(s->meta_attrs[0].display), "date");
	assert_null(kiln_display_name(KILN_DISPLAY_NONE));
	assert_string_equal(s->contract.name, "Owls Contract");
	assert_string_equal(s->contract.image, "ipfs://bafyimage");
	assert_int_equal(s->contract.ncollaborators, 1);
	assert_int_equal(s->seller_fee_bps, 250);
	assert_int_equal(s->ncreators, 2);
	assert_int_equal(s->creators[1].share, 60);
	assert_string_equal(s->mpl_collection_name, "Owls");
	assert_string_equal(s->reveal_image, "h.png");
	assert_string_equal(s->reveal_name, "Egg #{id}");
	kiln_spec_free(s);
}

static void spec_metadata_errors(void **state)
{
	static const struct {
		const char *meta, *want;
	} cases[] = {
		{"metadata: {display: {Hat: number}}", "is not a number"},
		{"metadata: {display: {Nope: number}}", "does not exist"},
		{"metadata: {display: {Level: {max_value: 3}}}", "needs a display_type"},
		{"metadata: {attributes: [{trait_type: A, value: 1, max_value: 2}]}",
		 "needs a display_type"},
		{"metadata: {attributes: [{trait_type: A, value: 1}, {trait_type: A, value: 2}]}",
		 "two attributes"},
		{"metadata: {metaplex: {creators: [{address: '1111', share: 100}]}}",
		 "not a Solana public key"},
		{"metadata: {metaplex: {creators: [{address: '11111111111111111111111111111111', "
		 "share: 50}, {address: '11111111111111111111111111111111', share: 50}]}}",
		 "listed twice"},
		{"metadata: {metaplex: {creators: [{address: '11111111111111111111111111111111', "
		 "share: 20}, {address: 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA', share: 20}, "
		 "{address: 'SysvarC1ock11111111111111111111111111111111', share: 20}, "
		 "{address: 'SysvarRent111111111111111111111111111111111', share: 20}, "
		 "{address: 'Vote111111111111111111111111111111111111111', share: 20}]}}",
		 "at most 4"},
		{"metadata: {metaplex: {collection: {name: X}}}", "needs a name and an image"},
		{"metadata: {reveal: {name: x}}", "needs hidden_image"},
		{"metadata: {targets: [metaplex], name: '{name} {name} {name} {name} {name} {name} {name} #{id}'}",
		 "allows 32"},
		{"metadata: {contract: {collaborators: ['0x12']}}", "not an Ethereum address"},
		/* Sugar uploads png, jpg/jpeg and gif only */
		{"image: {format: webp}\nmetadata: {targets: [erc721, metaplex]}",
		 "Sugar takes only png, jpg/jpeg or gif"},
		{"metadata: {targets: [metaplex], metaplex: {collection: {name: X, image: c.webp}}}",
		 "is not png, jpg/jpeg or gif"},
	};
	const char *head = "collection: {name: Owls, symbol: OWLS_TOO_LONG, size: 4}\n"
			   "layers:\n  - name: Level\n    traits:\n"
			   "      - {name: '1', file: a.png}\n      - {name: '2', file: b.png}\n"
			   "  - name: Hat\n    traits:\n"
			   "      - {name: Cap, file: c.png}\n      - {name: Crown, file: d.png}\n";
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char y[2048];
		struct kiln_spec *s = NULL;
		struct kiln_error e;
		int rc;
		snprintf(y, sizeof y, "%s%s\n", head, cases[i].meta);
		rc = kiln_spec_parse(&s, y, strlen(y), "k.yaml", NULL, &e);
		if (rc != KILN_E_SPEC || !strstr(e.msg, cases[i].want) || !strstr(e.where, "k.yaml:"))
			fail_msg("case %zu: rc %d, %s: %s (wanted '%s')", i, rc, e.where, e.msg,
				 cases[i].want);
		assert_null(s);
	}
	/* the symbol's length matters only for metaplex; then it points at the symbol */
	{
		char y[2048];
		struct kiln_spec *s = NULL;
		struct kiln_error e;
		snprintf(y, sizeof y, "%smetadata: {targets: [erc721, metaplex]}\n", head);
		assert_int_equal(kiln_spec_parse(&s, y, strlen(y), "k.yaml", NULL, &e), KILN_E_SPEC);
		assert_non_null(strstr(e.msg, "at most 10"));
		assert_string_equal(e.where, "k.yaml:1:34");
	}
}

/* WebP is refused only with the metaplex target; the error points at image.format. */
static void spec_webp_targets(void **state)
{
	const char *head = "collection: {name: Owls, symbol: OWL, size: 4}\n"
			   "image: {width: 8, height: 8, format: webp}\n"
			   "layers:\n  - name: Level\n    traits:\n"
			   "      - {name: '1', file: a.png}\n      - {name: '2', file: b.png}\n"
			   "  - name: Hat\n    traits:\n"
			   "      - {name: Cap, file: c.png}\n      - {name: Crown, file: d.png}\n";
	char y[1024];
	struct kiln_spec *s = NULL;
	struct kiln_error e;
	(void)state;
	snprintf(y, sizeof y, "%smetadata: {targets: [erc721, erc1155]}\n", head);
	if (kiln_spec_parse(&s, y, strlen(y), "k.yaml", NULL, &e))
		fail_msg("%s: %s", e.where, e.msg);
	kiln_spec_free(s);
	s = NULL;
	snprintf(y, sizeof y, "%smetadata: {targets: [metaplex]}\n", head);
	assert_int_equal(kiln_spec_parse(&s, y, strlen(y), "k.yaml", NULL, &e), KILN_E_SPEC);
	assert_string_equal(e.where, "k.yaml:2:38"); /* the value webp */
	assert_non_null(strstr(e.msg, "drop metaplex"));
	assert_null(s);
}

static void spec_allocation_failures(void **state)
{
	long n, ok = 0;
	(void)state;
	for (n = 0; n < 5000; n++) {
		struct kiln_spec *s = NULL;
		struct kiln_error e;
		int rc;
		kiln_alloc_fail_after(n);
		rc = kiln_spec_parse(&s, spec, strlen(spec), "k.yaml", NULL, &e);
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(provenance_hash), cmocka_unit_test(reveal_mapping),
		cmocka_unit_test(erc1155_names), cmocka_unit_test(verify_small_release),
		cmocka_unit_test(spec_metadata_blocks), cmocka_unit_test(spec_metadata_errors),
		cmocka_unit_test(spec_webp_targets),
		cmocka_unit_test(spec_allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
