/* SPDX-License-Identifier: MIT */
#include "cases.h"

#include <stdio.h>
#include <string.h>

int run_cases(const struct test_case *cases, size_t n, int argc, char **argv,
	      bool all_by_default)
{
	bool ran = false;

	if (argc > 1 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc > 2 || (argc < 2 && !all_by_default)) {
		fprintf(stderr, all_by_default ? "usage: %s [--list | CASE]\n" :
			"usage: %s --list | CASE\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		printf("== %s\n", cases[i].name);
		fflush(stdout);
		cases[i].run();
		ran = true;
	}
	if (!ran) {
		fprintf(stderr, "unknown case %s\n", argc > 1 ? argv[1] : "");
		return 2;
	}
	return CASES_RAN;
}
