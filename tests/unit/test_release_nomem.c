/* release under memory pressure: every allocation kiln_project_release makes, failed in turn
 * (kiln's hook: the Nth and all after it), must end in KILN_E_NOMEM, never in an error that
 * tells the user something untrue ("N items have no current render") or in success with a
 * partial release. The project is examples/owls, planned and rendered once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kiln/project.h"
#include "kiln/release.h"
#include "kiln/render.h"
#include "util/alloc.h"

static char dir[] = "/tmp/kiln-release-nomem.XXXXXX";

static void sh(const char *fmt, const char *a, const char *b)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, fmt, a, b);
	if (system(cmd))
		fail_msg("%s failed", cmd);
}

static struct kiln_project *project(void)
{
	struct kiln_project *p = NULL;
	struct kiln_project_plan_opts po = {0};
	struct kiln_plan_result pr;
	struct kiln_render_opts ro;
	struct kiln_render_result rr;
	struct kiln_error e;
	memset(&pr, 0, sizeof pr);
	memset(&ro, 0, sizeof ro);
	ro.threads = 2;
	if (!mkdtemp(dir))
		fail_msg("mkdtemp");
	sh("cp -r '%s/examples/owls/kiln.yaml' '%s'", KILN_SOURCE_DIR, dir);
	sh("cp -r '%s/examples/owls/layers' '%s'", KILN_SOURCE_DIR, dir);
	sh("cp -r '%s/examples/owls/legendaries' '%s'", KILN_SOURCE_DIR, dir);
	if (kiln_project_open(&p, dir, KILN_OPEN_WRITE, "test", &e) || kiln_project_plan(p, &po, &pr, &e) ||
	    kiln_project_render(p, &ro, &rr, &e))
		fail_msg("%s: %s", e.where, e.msg);
	kiln_plan_result_release(&pr);
	return p;
}

static void release_allocation_failures(void **state)
{
	struct kiln_project *p = project();
	struct kiln_release_opts o;
	struct kiln_release_result r;
	struct kiln_error e;
	long n, step = 1, failures = 0;
	int rc;
	(void)state;
	memset(&o, 0, sizeof o);
	o.force = 1;
	o.allow_qa_failures = 1;
	if ((rc = kiln_project_release(p, &o, &r, &e)))
		fail_msg("release: %s: %s", e.where, e.msg);
	/* every allocation of the first few thousand (catalog, recipes, the item checks), then
	 * sparser through writing dist/ */
	for (n = 0; n < 10000000; n += step) {
		kiln_alloc_fail_after(n);
		rc = kiln_project_release(p, &o, &r, &e);
		kiln_alloc_fail_after(-1);
		if (!rc && kiln_alloc_failed() == 0)
			break;
		if (rc != KILN_E_NOMEM)
			fail_msg("allocation %ld failed: release said %s: %s: %s", n,
				 kiln_error_name(rc), e.where, e.msg);
		failures++;
		if (n >= 3000)
			step = step + step / 8 + 1;
	}
	assert_true(failures > 100);
	assert_true(n < 10000000);
	/* and afterwards, with memory back, the release works */
	assert_int_equal(kiln_project_release(p, &o, &r, &e), 0);
	kiln_project_free(p);
	sh("rm -rf '%s'%s", dir, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(release_allocation_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
