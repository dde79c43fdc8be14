/* kiln_ipfs_tool: libkiln's IPFS module from the command line, for comparing with oracle.mjs.
 *
 *   kiln_ipfs_tool [--car OUT.car] [--hidden] [--tree] PATH
 *
 * Prints "<cid> <path>" for every file and folder (PATH last, named by its base name), in the
 * same format as oracle.mjs. Folders are walked here with the kiln_ipfs_dir API, in bytewise
 * name order; --tree instead imports with kiln_ipfs_import_tree() and prints the root only.
 * With --car, every block goes to OUT.car, rooted at PATH's CID.
 */
#include "kiln/release.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int hidden;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Import folder fs_path into d, printing entries under the name ipfs_path. */
static int walk(struct kiln_ipfs_dir *d, struct kiln_ipfs_car *car, const char *fs_path,
		const char *ipfs_path, struct kiln_error *e)
{
	DIR *dir = opendir(fs_path);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	if (!dir)
		return kiln_error_set(e, KILN_E_IO, fs_path, "cannot open folder");
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!hidden && de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			names = realloc(names, cap * sizeof *names);
			if (!names)
				abort();
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(dir);
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n && !rc; i++) {
		char cid[KILN_IPFS_CID_MAX], child[4096], ichild[4096];
		struct stat st;
		snprintf(child, sizeof child, "%s/%s", fs_path, names[i]);
		snprintf(ichild, sizeof ichild, "%s/%s", ipfs_path, names[i]);
		if (lstat(child, &st) != 0) {
			rc = kiln_error_set(e, KILN_E_IO, child, "cannot stat");
		} else if (S_ISDIR(st.st_mode)) {
			struct kiln_ipfs_dir *sub;
			rc = kiln_ipfs_dir_new(&sub, car, e);
			if (!rc)
				rc = walk(sub, car, child, ichild, e);
			if (!rc)
				rc = kiln_ipfs_dir_add_dir(d, names[i], sub, cid, e);
			else
				kiln_ipfs_dir_free(sub);
			if (!rc)
				printf("%s %s\n", cid, ichild);
		} else {
			rc = kiln_ipfs_dir_add_file(d, names[i], child, cid, e);
			if (!rc)
				printf("%s %s\n", cid, ichild);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	struct kiln_error e;
	struct kiln_ipfs_car *car = NULL;
	const char *car_path = NULL, *path = NULL, *base;
	char cid[KILN_IPFS_CID_MAX], top[4096];
	struct stat st;
	int tree = 0, rc;
	kiln_error_clear(&e);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--car") && i + 1 < argc)
			car_path = argv[++i];
		else if (!strcmp(argv[i], "--hidden"))
			hidden = 1;
		else if (!strcmp(argv[i], "--tree"))
			tree = 1;
		else if (!path)
			path = argv[i];
		else
			path = NULL, i = argc;
	}
	if (!path) {
		fprintf(stderr, "usage: kiln_ipfs_tool [--car OUT.car] [--hidden] [--tree] PATH\n");
		return 2;
	}
	snprintf(top, sizeof top, "%s", path);
	while (strlen(top) > 1 && top[strlen(top) - 1] == '/')
		top[strlen(top) - 1] = 0;
	base = strrchr(top, '/') ? strrchr(top, '/') + 1 : top;
	if (car_path && (rc = kiln_ipfs_car_open(&car, car_path, &e)))
		goto fail;
	if (stat(top, &st) != 0) {
		rc = kiln_error_set(&e, KILN_E_IO, top, "cannot stat");
		goto fail;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = kiln_ipfs_import_path(top, car, cid, NULL, &e);
	} else if (tree) {
		rc = kiln_ipfs_import_tree(top, car, hidden, cid, NULL, &e);
	} else {
		struct kiln_ipfs_dir *d;
		rc = kiln_ipfs_dir_new(&d, car, &e);
		if (!rc && !(rc = walk(d, car, top, base, &e)))
			rc = kiln_ipfs_dir_finish(d, cid, NULL, &e);
		kiln_ipfs_dir_free(d);
	}
	if (rc)
		goto fail;
	printf("%s %s\n", cid, base);
	if (car && (rc = kiln_ipfs_car_finish(car, cid, &e)))
		goto fail;
	kiln_ipfs_car_free(car);
	return 0;
fail:
	fprintf(stderr, "kiln_ipfs_tool: %s: %s\n", e.where, e.msg);
	kiln_ipfs_car_free(car);
	return 1;
}
