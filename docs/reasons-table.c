/* SPDX-License-Identifier: MIT */
/*
 * Prints the tables of failure reasons for docs/RELIABILITY.md from the one list in
 * vfio-uring.h (VFIO_URING_REASONS). docs/reasons-table.sh puts them between the markers in
 * the document (`ninja -C build update-reasons-table`) and the unit test reasons-doc checks
 * that the document holds exactly this output.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vfio-uring.h"

static const char *side_name(const char *side)
{
	return strcmp(side, "DESTINATION") == 0 ? "destination"
	       : strcmp(side, "SOURCE") == 0	? "source"
						: "either";
}

int main(void)
{
	puts("Destination checks of what the peer sent (`VFIO_URING_REASONS_WIRE`), in the order "
	     "they are made; each has an errno of its own.\n"
	     "\n"
	     "| reason | value | errno | the check that failed |\n"
	     "|---|---|---|---|");
#define WIRE_ROW(name, value, err, side, meaning) \
	printf("| `%s` | %d | `%s` | %s |\n", #name, value, #err, meaning);
	VFIO_URING_REASONS_WIRE(WIRE_ROW)
	puts("\n"
	     "Every other failure (`VFIO_URING_REASONS_OTHER`). An errno in italics is the failed "
	     "call's own.\n"
	     "\n"
	     "| reason | value | side | errno | meaning |\n"
	     "|---|---|---|---|---|");
#define OTHER_ROW(name, value, err, side, meaning)                                          \
	printf("| `%s` | %d | %s | %s | %s |\n", #name, value, side_name(#side),            \
	       (err) ? "`" #err "`" : "*the call's*", meaning);
	VFIO_URING_REASONS_OTHER(OTHER_ROW)
	return 0;
}
