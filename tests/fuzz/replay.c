// SPDX-License-Identifier: GPL-2.0
/*
 * Description: every input of the committed fuzz corpus (tests/fuzz/corpus/<target>/) runs once
 * through its target, built with AddressSanitizer and UndefinedBehaviorSanitizer but without
 * libFuzzer, so `make test` replays what the fuzzers found.  A crash or a failed check aborts;
 * an empty or missing corpus fails.  Usage: test_fuzz_corpus [CORPUS_DIR]
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef XM_FUZZ_CORPUS
#define XM_FUZZ_CORPUS "tests/fuzz/corpus"
#endif

/* Each target's LLVMFuzzerTestOneInput, renamed when built for this driver. */
int xm_fuzz_nbd_request(const uint8_t *data, size_t size);
int xm_fuzz_frame(const uint8_t *data, size_t size);
int xm_fuzz_hello(const uint8_t *data, size_t size);

static const struct fuzz_target {
	const char *name;
	int (*one)(const uint8_t *data, size_t size);
} targets[] = {
	{"fuzz_nbd_request", xm_fuzz_nbd_request},
	{"fuzz_frame", xm_fuzz_frame},
	{"fuzz_hello", xm_fuzz_hello},
};

/* Reads a whole file into a block of exactly its size, so reads past the end are caught. */
static uint8_t *read_input(const char *path, size_t *size)
{
	uint8_t *buf = NULL;
	FILE *f = fopen(path, "rb");
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out_close;
	buf = malloc(len ? (size_t)len : 1);
	if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
	}
	*size = (size_t)len;
out_close:
	fclose(f);
	return buf;
}

static int replay_target(const char *root, const struct fuzz_target *t)
{
	struct dirent **names;
	char dir[4096], path[8192];
	int i, n, ran = 0, err = 0;

	snprintf(dir, sizeof(dir), "%s/%s", root, t->name);
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "FAIL %s: corpus '%s': %s\n", t->name, dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		size_t size = 0;
		uint8_t *data;

		if (err || names[i]->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		data = read_input(path, &size);
		if (!data) {
			fprintf(stderr, "FAIL %s: read '%s': %s\n", t->name, path, strerror(errno));
			err = -1;
			continue;
		}
		/* Named first, so a crash report says which input it was. */
		fprintf(stderr, "  %s %s\n", t->name, path);
		t->one(data, size);
		free(data);
		ran++;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (err)
		return err;
	if (!ran) {
		fprintf(stderr, "FAIL %s: no inputs in '%s'\n", t->name, dir);
		return -1;
	}
	printf("%s: %d inputs replayed\n", t->name, ran);
	return 0;
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : XM_FUZZ_CORPUS;
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (replay_target(root, &targets[i]))
			failed = 1;
	return failed;
}
