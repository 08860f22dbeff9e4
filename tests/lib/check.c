/* SPDX-License-Identifier: MIT */
#include "check.h"

int check_failures;

int check_result(void)
{
	if (check_failures)
		fprintf(stderr, "%d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}
