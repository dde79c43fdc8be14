/* The inpaint requests of the review app's brush (lib/catalog/inpaint.c): added pending with
 * their mask, prompt and denoise; listed per item or for every item, by status, oldest first;
 * marked done (input and output kept) or failed (error kept) once: a second end is refused;
 * they survive closing and opening the catalog, and a read-only catalog refuses new ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/catalog.h"
#include "util/fs.h"

static const char *M = "1111111111111111111111111111111111111111111111111111111111111111";
static const char *I = "2222222222222222222222222222222222222222222222222222222222222222";
static const char *O = "3333333333333333333333333333333333333333333333333333333333333333";

static void requests(void **state)
{
	char dir[64], db[128];
	struct kiln_catalog *c = NULL;
	struct kiln_error e;
	struct kiln_inpaint_request r;
	struct kiln_inpaint_requests l;
	uint64_t item = 7, other = 9;
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/kiln-test-inpaint-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof db, "%s/catalog.db", dir);
	assert_int_equal(kiln_catalog_open(&c, db, &e), 0);

	assert_int_equal(kiln_catalog_inpaint_add(c, item, "ann", M, "a hand", NULL, 0.75, &r,
						  &e), 0);
	assert_true(r.id > 0);
	assert_int_equal(r.item_id, item);
	assert_string_equal(r.status, "pending");
	assert_string_equal(r.reviewer, "ann");
	assert_string_equal(r.mask, M);
	assert_string_equal(r.prompt, "a hand");
	assert_null(r.negative);
	assert_true(r.denoise == 0.75);
	assert_true(r.at[0]);
	kiln_inpaint_request_release(&r);
	assert_int_equal(kiln_catalog_inpaint_add(c, other, "bob", M, "text", "blur", 0.5, NULL,
						  &e), 0);
	assert_int_equal(kiln_catalog_inpaint_add(c, item, "bob", M, "two", NULL, 0.3, NULL, &e),
			 0);

	assert_int_equal(kiln_catalog_inpaint_list(c, NULL, "pending", &l, &e), 0);
	assert_int_equal(l.n, 3);
	assert_true(l.v[0].id < l.v[1].id && l.v[1].id < l.v[2].id);
	assert_string_equal(l.v[1].negative, "blur");
	kiln_inpaint_requests_release(&l);
	assert_int_equal(kiln_catalog_inpaint_list(c, &item, NULL, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[1].prompt, "two");

	assert_int_equal(kiln_catalog_inpaint_done(c, l.v[0].id, I, O, &e), 0);
	assert_int_not_equal(kiln_catalog_inpaint_done(c, l.v[0].id, I, O, &e), 0);
	assert_int_equal(e.code, KILN_E_STATE);
	assert_int_equal(kiln_catalog_inpaint_failed(c, l.v[1].id, "engine down", &e), 0);
	assert_int_not_equal(kiln_catalog_inpaint_failed(c, l.v[1].id, "again", &e), 0);
	kiln_inpaint_requests_release(&l);
	kiln_catalog_free(c);

	assert_int_equal(kiln_catalog_open(&c, db, &e), 0);
	assert_int_equal(kiln_catalog_inpaint_list(c, &item, NULL, &l, &e), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0].status, "done");
	assert_string_equal(l.v[0].input, I);
	assert_string_equal(l.v[0].output, O);
	assert_true(l.v[0].done_at[0]);
	assert_null(l.v[0].error);
	assert_string_equal(l.v[1].status, "failed");
	assert_string_equal(l.v[1].error, "engine down");
	assert_string_equal(l.v[1].output, "");
	kiln_inpaint_requests_release(&l);
	assert_int_equal(kiln_catalog_inpaint_list(c, NULL, "pending", &l, &e), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].item_id, other);
	kiln_inpaint_requests_release(&l);
	kiln_catalog_free(c);

	assert_int_equal(kiln_catalog_open_readonly(&c, db, &e), 0);
	assert_int_not_equal(kiln_catalog_inpaint_add(c, item, "ann", M, "x", NULL, 0.5, NULL, &e),
			     0);
	kiln_catalog_free(c);
	assert_int_equal(kiln_fs_remove_tree(dir, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(requests)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
