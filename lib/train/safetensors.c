/* safetensors: a bounds-checked reader of the header, the model hashes A1111 shows, and the
 * registry record of a model file.
 *
 * Invariants: nothing in a file is trusted. The header length is checked against the file
 * size and KILN_SAFETENSORS_HEADER_MAX before anything is allocated for it; the header is
 * parsed by jansson (duplicate keys refused, so two readers cannot disagree on a key); every
 * tensor's data_offsets must lie within the data and begin <= end; __metadata__ must be an
 * object of strings, kept verbatim. The file is read once, 1 MiB at a time, for all hashes.
 *
 * Sizes: model files from a few MB (LoRA) to ~7 GB (SDXL checkpoints); headers up to a few MB
 * (kohya's ss_tag_frequency). */
#include "kiln/train.h"
#include "util/alloc.h"
#include "util/path.h"
#include "util/sha.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LEGACY_AT 0x100000u
#define LEGACY_LEN 0x10000u
#define CHUNK ((size_t)1 << 20)

static int bad(struct kiln_error *e, const char *where, const char *what)
{
	return kiln_error_set(e, KILN_E_IO, where, "not a valid safetensors file: %s", what);
}

static int is_uint(json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 0;
}

int kiln_safetensors_parse(const uint8_t *p, size_t n, uint64_t file_size, const char *where,
			   struct kiln_safetensors *st, struct kiln_error *e)
{
	json_t *h = NULL, *meta, *v;
	json_error_t je;
	const char *key;
	uint64_t len = 0;
	int rc = 0;
	memset(st, 0, sizeof *st);
	if (file_size < 8 || n < 8)
		return bad(e, where, "shorter than its 8-byte header length");
	for (int i = 7; i >= 0; i--)
		len = len << 8 | p[i];
	if (len > KILN_SAFETENSORS_HEADER_MAX)
		return kiln_error_set(e, KILN_E_IO, where, "not a valid safetensors file: its header "
				      "claims %llu bytes, over the %llu MB limit",
				      (unsigned long long)len,
				      (unsigned long long)(KILN_SAFETENSORS_HEADER_MAX >> 20));
	if (len > file_size - 8)
		return kiln_error_set(e, KILN_E_IO, where, "not a valid safetensors file: its header "
				      "claims %llu bytes, the file has %llu after the length",
				      (unsigned long long)len, (unsigned long long)(file_size - 8));
	if (len < 2 || n - 8 < len)
		return bad(e, where, "the header is too short to be a JSON object");
	st->header_len = len;
	st->data_len = file_size - 8 - len;
	h = json_loadb((const char *)p + 8, (size_t)len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
		       &je);
	if (!h) {
		rc = kiln_error_set(e, KILN_E_IO, where, "not a valid safetensors file: the header "
				    "is not JSON (byte %d: %s)", je.position, je.text);
		goto out;
	}
	if (!json_is_object(h)) {
		rc = bad(e, where, "the header is not a JSON object");
		goto out;
	}
	meta = json_object_get(h, "__metadata__");
	if (meta && !json_is_object(meta)) {
		rc = bad(e, where, "__metadata__ is not an object");
		goto out;
	}
	json_object_foreach(meta, key, v)
		if (!json_is_string(v)) {
			rc = kiln_error_set(e, KILN_E_IO, where, "not a valid safetensors file: "
					    "__metadata__ \"%.100s\" is not a string", key);
			goto out;
		}
	json_object_foreach(h, key, v) {
		json_t *off, *b, *en;
		if (!strcmp(key, "__metadata__"))
			continue;
		off = json_object_get(v, "data_offsets");
		b = json_array_get(off, 0);
		en = json_array_get(off, 1);
		if (!json_is_object(v) || !json_is_string(json_object_get(v, "dtype")) ||
		    !json_is_array(json_object_get(v, "shape")) || json_array_size(off) != 2 ||
		    !is_uint(b) || !is_uint(en) || json_integer_value(b) > json_integer_value(en) ||
		    (uint64_t)json_integer_value(en) > st->data_len) {
			rc = kiln_error_set(e, KILN_E_IO, where, "not a valid safetensors file: tensor "
					    "\"%.100s\" lacks dtype, shape or data_offsets within the "
					    "%llu data bytes", key, (unsigned long long)st->data_len);
			goto out;
		}
		st->tensors++;
		if (!strncmp(key, "lora_", 5) || strstr(key, ".lora_") || strstr(key, "lora_down"))
			st->lora = 1;
	}
	if (json_object_get(meta, "ss_network_module") || json_object_get(meta, "ss_network_dim"))
		st->lora = 1;
	st->metadata_json = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS)
				 : kiln_strdup("{}");
	if (!st->metadata_json)
		rc = kiln_error_set(e, KILN_E_NOMEM, where, "out of memory");
out:
	json_decref(h);
	if (rc)
		kiln_safetensors_release(st);
	return rc;
}

void kiln_safetensors_release(struct kiln_safetensors *st)
{
	if (!st)
		return;
	free(st->metadata_json);
	st->metadata_json = NULL;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcasecmp(s + a - b, suf);
}

/* read exactly n bytes at the current offset (fewer only at the end of the file) */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int kiln_model_read(const char *path, struct kiln_model *m, struct kiln_error *e)
{
	struct kiln_sha256 all = {0}, legacy = {0}, addnet = {0};
	uint8_t *buf = NULL, *head = NULL;
	const char *base = strrchr(path, '/');
	uint64_t off = 0, data_at = 0;
	size_t size = 0;
	int fd = -1, rc;
	memset(m, 0, sizeof *m);
	base = base ? base + 1 : path;
	snprintf(m->file, sizeof m->file, "%s", base);
	snprintf(m->name, sizeof m->name, "%s", base);
	{
		char *dot = strrchr(m->name, '.');
		if (dot && dot != m->name)
			*dot = 0;
	}
	if ((rc = kiln_path_open_regular(path, 0, 0, &fd, &size, e)))
		return rc;
	m->bytes = size;
	m->safetensors = ends_with(path, ".safetensors");
	if (m->safetensors) {
		uint8_t len8[8];
		uint64_t len = 0;
		if (read_full(fd, len8, 8) != 8) {
			rc = bad(e, path, "shorter than its 8-byte header length");
			goto out;
		}
		for (int i = 7; i >= 0; i--)
			len = len << 8 | len8[i];
		if (len > KILN_SAFETENSORS_HEADER_MAX || len > size - 8) {
			/* the parser words it */
			rc = kiln_safetensors_parse(len8, 8, size, path, &m->st, e);
			if (!rc)
				rc = bad(e, path, "bad header length");
			goto out;
		}
		if (!(head = kiln_malloc(8 + (size_t)len))) {
			rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
			goto out;
		}
		memcpy(head, len8, 8);
		if (read_full(fd, head + 8, (size_t)len) != (ssize_t)len) {
			rc = kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(errno));
			goto out;
		}
		if ((rc = kiln_safetensors_parse(head, 8 + (size_t)len, size, path, &m->st, e)))
			goto out;
		data_at = 8 + len;
		if (lseek(fd, 0, SEEK_SET) != 0) {
			rc = kiln_error_set(e, KILN_E_IO, path, "seek failed: %s", strerror(errno));
			goto out;
		}
	}
	if (!(buf = kiln_malloc(CHUNK)) || kiln_sha256_init(&all) || kiln_sha256_init(&legacy) ||
	    kiln_sha256_init(&addnet)) {
		rc = kiln_error_set(e, KILN_E_NOMEM, path, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r = read_full(fd, buf, CHUNK);
		uint64_t a, b;
		if (r < 0) {
			rc = kiln_error_set(e, KILN_E_IO, path, "read failed: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		kiln_sha256_update(&all, buf, (size_t)r);
		/* the legacy window [0x100000, 0x110000) and the data after the header */
		a = off > LEGACY_AT ? off : LEGACY_AT;
		b = off + (uint64_t)r < LEGACY_AT + LEGACY_LEN ? off + (uint64_t)r
							   : LEGACY_AT + LEGACY_LEN;
		if (a < b)
			kiln_sha256_update(&legacy, buf + (a - off), (size_t)(b - a));
		if (m->safetensors && off + (uint64_t)r > data_at) {
			a = off > data_at ? off : data_at;
			kiln_sha256_update(&addnet, buf + (a - off), (size_t)(off + (uint64_t)r - a));
		}
		off += (uint64_t)r;
	}
	if (off != size) {
		rc = kiln_error_set(e, KILN_E_IO, path, "the file changed size while it was read");
		goto out;
	}
	{
		char lh[65];
		kiln_sha256_final(&all, NULL, m->sha256);
		kiln_sha256_final(&legacy, NULL, lh);
		memcpy(m->legacy, lh, 8);
		m->legacy[8] = 0;
		kiln_sha256_final(&addnet, NULL, lh);
		if (m->safetensors)
			memcpy(m->addnet, lh, 65);
	}
	if (m->safetensors) {
		json_t *meta = json_loads(m->st.metadata_json, 0, NULL);
		const char *sshs = json_string_value(json_object_get(meta, "sshs_model_hash"));
		if (sshs && strcasecmp(sshs, m->addnet))
			rc = kiln_error_set(e, KILN_E_IO, path, "its metadata's sshs_model_hash is "
					    "%.64s, but the tensor data after the header hashes to %s: "
					    "the file was changed after training (or the metadata is "
					    "wrong)", sshs, m->addnet);
		json_decref(meta);
	}
out:
	kiln_sha256_abort(&all);
	kiln_sha256_abort(&legacy);
	kiln_sha256_abort(&addnet);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(head);
	if (rc)
		kiln_model_release(m);
	return rc;
}

void kiln_model_release(struct kiln_model *m)
{
	if (m)
		kiln_safetensors_release(&m->st);
}

char *kiln_model_record(const struct kiln_model *m, const char *license, const char *source,
			const char *const *trained_on, size_t ntrained)
{
	json_t *r, *a, *t = json_array(), *meta = NULL;
	char h10[11], h12[13];
	char *out = NULL;
	snprintf(h10, sizeof h10, "%.10s", m->sha256);
	snprintf(h12, sizeof h12, "%.12s", m->addnet);
	a = json_pack("{s:s, s:s}", "model_hash", h10, "legacy_hash", m->legacy);
	if (a && m->addnet[0] && (json_object_set_new(a, "lora_hash", json_string(h12)) ||
				  json_object_set_new(a, "addnet_hash", json_string(m->addnet))))
		goto out;
	for (size_t i = 0; t && i < ntrained; i++)
		if (json_array_append_new(t, json_string(trained_on[i])))
			goto out;
	r = json_pack("{s:s, s:s, s:s, s:I, s:s, s:O?, s:s?, s:s?, s:O?}", "name", m->name, "file",
		      m->file, "kind", m->safetensors && m->st.lora ? "lora" : "checkpoint",
		      "bytes", (json_int_t)m->bytes, "sha256", m->sha256, "a1111", a, "license",
		      license && *license ? license : NULL, "source",
		      source && *source ? source : NULL, "trained_on", t);
	if (r && m->safetensors) {
		meta = json_loads(m->st.metadata_json, 0, NULL);
		if (!meta || json_object_set_new(r, "safetensors",
						 json_pack("{s:I, s:I, s:O}", "header_bytes",
							   (json_int_t)m->st.header_len, "tensors",
							   (json_int_t)m->st.tensors, "metadata",
							   meta))) {
			json_decref(r);
			r = NULL;
		}
	}
	if (r)
		out = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(r);
out:
	json_decref(meta);
	json_decref(a);
	json_decref(t);
	return out;
}
